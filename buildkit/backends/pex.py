"""PEX zipapps: ``--venv --sh-boot`` for the fastest warm start, any target from any host."""

from __future__ import annotations

import json
from pathlib import Path

from .. import tools
from ..checks import pythons
from ..targets import Target
from . import BuildJob, Output, ZipappBackend, launcher, wheel_dir


class PexBackend(ZipappBackend):
    name = "pex"
    file_suffix = ".pex"

    def tool_versions(self, target: Target) -> dict[str, str]:
        return {"pex": tools.tool_version("pex")}

    def build(self, job: BuildJob, work: Path) -> Output:
        platform = work / "complete-platform.json"
        platform.write_text(
            json.dumps(job.target.complete_platform(job.python), sort_keys=True),
            encoding="utf-8",
        )
        out = work / "out.pex"
        boot = job.app_dir / f"{launcher.BOOT_MODULE}.py"
        # pex's boot takes any python3.X when python3.<ours> is missing: the wheels decide
        # whether a later one may run the app
        or_newer = pythons.open_ended((w.filename for w in job.wheels), job.python)
        text = launcher.boot_module(
            job.entry,
            job.python,
            or_newer=or_newer,
            seccomp=launcher.seccomp_of(job.settings, job.target.arch, job.seccomp_filter),
        )
        boot.write_text(text, encoding="utf-8")
        boot.chmod(0o644)
        cmd: list[str | Path] = [
            tools.find_tool("pex"),
            "--no-pypi", "--find-links", wheel_dir(job, work), "--intransitive",
            "--complete-platform", platform,
            "--sources-directory", job.app_dir,
            "--entry-point", launcher.BOOT_ENTRY,
            "--venv", "prepend", "--sh-boot", "--no-emit-warnings", "--inject-python-args=-I",
            "--output-file", out,
        ]  # fmt: skip
        if job.wheels:
            cmd += ["--requirement", job.lockfile]
        tools.run(
            cmd,
            what=f"pex build for {job.target.name}",
            env={"PEX_ROOT": str(job.cache.tool_dir("pex"))},
        )
        header = launcher.zip_prefix(out).decode("utf-8")
        launcher.replace_prefix(
            out, launcher.pex_header(header, job.name, job.python, or_newer=or_newer).encode()
        )
        return Output(artifact=out)
