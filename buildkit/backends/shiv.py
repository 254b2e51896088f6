"""shiv zipapps: pip installs the verified wheels for the target; shiv zips them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .. import tools
from ..targets import Target
from . import BuildJob, Output, ZipappBackend, launcher, wheel_dir


class ShivBackend(ZipappBackend):
    name = "shiv"
    file_suffix = ".pyz"

    def tool_versions(self, target: Target) -> dict[str, str]:
        return {"shiv": tools.tool_version("shiv"), "pip": tools.tool_version("pip")}

    def build(self, job: BuildJob, work: Path) -> Output:
        out = work / "out.pyz"
        boot = job.app_dir / f"{launcher.BOOT_MODULE}.py"
        # the sh header starts python3.<ours> only; run by another, the boot says so
        text = launcher.boot_module(
            job.entry,
            job.python,
            or_newer=False,
            seccomp=launcher.seccomp_of(job.settings, job.target.arch, job.seccomp_filter),
        )
        boot.write_text(text, encoding="utf-8")
        boot.chmod(0o644)
        cmd: list[str | Path] = [
            tools.find_tool("shiv"),
            "--entry-point", launcher.BOOT_ENTRY,
            "--output-file", out,
            "--python", f"/usr/bin/env python{job.python}",
            "--site-packages", job.app_dir,
            "--reproducible", "--compile-pyc",
        ]  # fmt: skip
        if job.wheels:
            nodot = job.python.replace(".", "")
            cmd += [
                "--no-index", "--find-links", wheel_dir(job, work),
                "--only-binary=:all:", "--no-deps", "--require-hashes",
                "--python-version", job.python, "--implementation", "cp",
                "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none",
                *(f"--platform={tag}" for tag in job.target.platform_tags),
                "--requirement", job.lockfile,
            ]  # fmt: skip
        tools.run(
            cmd,
            what=f"shiv build for {job.target.name}",
            env={"PIP_CACHE_DIR": str(job.cache.tool_dir("pip"))},
        )
        with zipfile.ZipFile(out) as zf:
            build_id = str(json.loads(zf.read("environment.json"))["build_id"])
        header = launcher.shiv_header(job.name, job.python, build_id)
        launcher.replace_prefix(out, header.encode())
        return Output(artifact=out)
