"""The release's seccomp profiles, derived from its manifest.

For each recipe version and linux target whose artifacts' checks recorded system calls
(the manifest's ``checks.syscalls``), two files:

* ``<recipe>-<version>-<target>.seccomp.json``: the OCI/Docker seccomp profile
  (``docker run --security-opt seccomp=FILE``, Podman, containerd, Kubernetes'
  ``localhost`` profiles);
* ``<recipe>-<version>-<target>.seccomp.conf``: the same list as a systemd drop-in
  (``SystemCallFilter=``).

A target's profile allows what the profiles of *all* its artifacts allow (pex, shiv and
the native binary; each recorded in the manifest), so any of them runs under it. Nothing
here needs libseccomp: ``verify`` and ``release assemble`` run anywhere. Written by
``build`` and again by ``release assemble``; ``verify`` derives them again and compares.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping

from .. import seccomp
from .manifest import ArtifactRecord

SUFFIXES = (".seccomp.json", ".seccomp.conf")


def render(entries: Mapping[str, ArtifactRecord]) -> dict[str, str]:
    """File name → text for every profile the manifest entries call for."""
    groups: dict[tuple[str, str, str], dict[str, ArtifactRecord]] = defaultdict(dict)
    for name, entry in entries.items():
        if entry.checks and "syscalls" in entry.checks:
            groups[(entry.recipe, entry.version, entry.target)][name] = entry
    texts: dict[str, str] = {}
    for (recipe, version, target), group in sorted(groups.items()):
        docs = {n: e.checks["syscalls"] for n, e in group.items() if e.checks}
        calls = tuple(sorted({c for d in docs.values() for c in d["allowed"]}))
        # socket() is limited when every artifact's record limits it (a record made
        # before families were recorded, or one with an unnamed family, does not)
        limits = [d.get("allowed_families") for d in docs.values()]
        families = (
            None
            if any(f is None for f in limits)
            else seccomp.sorted_families(f for fs in limits if fs for f in fs)
        )
        profile = seccomp.Profile(
            arch=next(iter(docs.values()))["arch"],
            calls=calls,
            recorded=tuple(sorted({c for d in docs.values() for c in d["calls"]})),
            sources=tuple(sorted(docs)),
            families=families,
        )
        stem = f"{recipe}-{version}-{target}"
        texts[f"{stem}.seccomp.json"] = profile.oci_text()
        texts[f"{stem}.seccomp.conf"] = profile.systemd_text(f"{recipe} {version} ({target})")
    return texts


def digests(records: Iterable[ArtifactRecord]) -> dict[str, str]:
    """File name → sha256 of the profiles these records call for (SBOM, provenance)."""
    texts = render({r.name: r for r in records})
    return {name: hashlib.sha256(text.encode()).hexdigest() for name, text in texts.items()}
