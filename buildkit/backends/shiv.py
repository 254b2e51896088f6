"""shiv zipapps: pip installs the verified wheels for the target; shiv zips them."""

from __future__ import annotations

from pathlib import Path

from .. import tools
from . import BuildJob, Output, ZipappBackend, wheel_dir


class ShivBackend(ZipappBackend):
    name = "shiv"
    file_suffix = ".pyz"

    def tool_versions(self) -> dict[str, str]:
        return {"shiv": tools.tool_version("shiv"), "pip": tools.tool_version("pip")}

    def build(self, job: BuildJob, work: Path) -> Output:
        out = work / "out.pyz"
        cmd: list[str | Path] = [
            tools.find_tool("shiv"),
            "--entry-point", job.entry,
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
        return Output(artifact=out)
