"""The release's SBOM: a CycloneDX 1.6 JSON document per recipe version, written with
cyclonedx-python-lib from the manifest entries of that version.

Components: every artifact (its sha256, target, format), the recipe's own sources, every
wheel each artifact was built from (purl ``pkg:pypi/<name>@<version>`` and the sha256 of
the file actually used), and for Nuitka binaries the Python interpreter and the Nuitka
runtime compiled into them. Every native file inside an artifact (the manifest's
``natives``) is a file component with its sha256, nested in the component it belongs to:
the wheel it came from, the interpreter (a stdlib module that links a toolchain library,
such as ``_ssl`` with OpenSSL, also depends on that library's component), the
distribution package of a system library (purl ``pkg:deb/…`` or ``pkg:apk/…``), else the
artifact itself (the recipe's own compiled code). Dependencies: the release needs its
artifacts; each artifact needs the sources, its wheels and (Nuitka) the interpreter and
runtime.

Deterministic: the serial number is a UUID derived from the entries, the timestamp is
SOURCE_DATE_EPOCH; the same entries always give the same bytes. Everything is read from
the manifest, so ``release assemble`` rebuilds the SBOM of a merged release the same way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from .. import tools
from . import profiles
from .manifest import ArtifactRecord
from .wheels import interpreter_version, wheel_files

SUFFIX = ".cdx.json"
_NAMESPACE = uuid.UUID("6f1e1d1c-5b2a-4c3e-9f80-0b5d2a7c9e41")


def filename(stem: str) -> str:
    return stem + SUFFIX


def _sha256(hex_digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=hex_digest.removeprefix("sha256:"))]


def _props(**values: str) -> list[Property]:
    return [Property(name=f"buildkit:{k.replace('_', '-')}", value=v) for k, v in values.items()]


def render(recipe: str, version: str, records: Sequence[ArtifactRecord]) -> str:
    """The SBOM of ``recipe`` ``version`` from its manifest records (any order)."""
    entries = [r.to_dict() for r in sorted(records, key=lambda r: r.name)]
    canonical = json.dumps([recipe, version, entries], sort_keys=True).encode()
    serial = uuid.uuid5(_NAMESPACE, hashlib.sha256(canonical).hexdigest())
    release = Component(
        type=ComponentType.APPLICATION,
        name=recipe,
        version=version,
        bom_ref=f"release:{recipe}@{version}",
    )
    bom = Bom(
        serial_number=serial,
        metadata=BomMetaData(
            component=release,
            timestamp=datetime.fromtimestamp(int(tools.SOURCE_DATE_EPOCH), UTC),
        ),
    )
    once = _Once(bom)
    artifacts = []
    for entry in entries:
        inputs = entry.get("inputs", {})
        artifact = Component(
            type=ComponentType.APPLICATION,
            name=str(entry["name"]),
            version=version,
            bom_ref=f"artifact:{entry['name']}",
            hashes=_sha256(str(entry["sha256"])),
            properties=_props(
                target=str(entry["target"]), format=str(entry["format"]), python=entry["python"]
            ),
        )
        bom.components.add(artifact)
        artifacts.append(artifact)
        sources = once(
            Component(
                type=ComponentType.APPLICATION,
                name=f"{recipe} sources",
                version=version,
                bom_ref=f"sources:{inputs.get('sources_digest', '')}",
                hashes=_sha256(str(inputs.get("sources_digest", ""))),
                description="the recipe's own code (sha256 over its sorted file list)",
            )
        )
        needs = [sources]
        wheels: dict[str, Component] = {}
        for wheel in wheel_files(entry):
            wheels[wheel.filename] = once(
                Component(
                    type=ComponentType.LIBRARY,
                    name=wheel.name,
                    version=wheel.version,
                    bom_ref=f"wheel:{wheel.filename}",
                    purl=PackageURL.from_string(wheel.purl),
                    hashes=_sha256(wheel.sha256),
                    properties=_props(file=wheel.filename)
                    + (_props(origin="native package of the recipe") if wheel.own else []),
                )
            )
        needs += list(wheels.values())
        runtime = _nuitka_runtime(entry, once) if entry["format"] == "nuitka" else []
        needs += runtime
        bom.register_dependency(artifact, needs)
        owners = _Owners(artifact=artifact, wheels=wheels, runtime=runtime, once=once)
        for row in entry.get("natives") or ():
            file = _native(str(entry["name"]), row)
            owner, libraries = owners.of(row)
            owner.components.add(file)
            if libraries:
                bom.register_dependency(file, libraries)
    for name, sha in sorted(profiles.digests(records).items()):
        profile = Component(
            type=ComponentType.FILE,
            name=name,
            version=version,
            bom_ref=f"profile:{name}",
            hashes=_sha256(sha),
            description="seccomp profile: the system calls the recipe's checks made",
            properties=_props(kind="seccomp-profile"),
        )
        bom.components.add(profile)
        artifacts.append(profile)
    bom.register_dependency(release, artifacts)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def _native(artifact: str, row: Mapping[str, str]) -> Component:
    """A native file inside an artifact, as a file component (nested in its owner)."""
    name = f"{artifact}!{row['path']}" if row["path"] else artifact
    return Component(
        type=ComponentType.FILE,
        name=name,
        bom_ref=f"native:{name}",
        hashes=_sha256(row["sha256"]) if row["sha256"] else [],
        properties=_props(
            component=row["component"], origin=row["origin"], **{"source": row["source"]}
        ),
    )


@dataclass(kw_only=True)
class _Owners:
    """The component each native file of one artifact belongs to: the wheel it came from,
    the interpreter (with the toolchain libraries compiled into it), the distribution
    package of a system library, else the artifact itself (the recipe's own code)."""

    artifact: Component
    wheels: dict[str, Component]  # by wheel file name
    runtime: list[Component]  # the interpreter, Nuitka and the toolchain (nuitka only)
    once: _Once

    def _runtime(self, prefix: str) -> Component | None:
        return next((c for c in self.runtime if str(c.bom_ref).startswith(prefix)), None)

    def of(self, row: Mapping[str, str]) -> tuple[Component, list[Component]]:
        kind, source = row["component"], row["source"]
        if kind in ("wheel", "own") and source in self.wheels:
            return self.wheels[source], []
        if kind == "wheel":
            project = canonicalize_name(row["origin"].split(" ", 1)[0])
            found = [c for c in self.wheels.values() if c.name == project]
            if found:
                return found[0], []
        if kind == "toolchain":
            from ..toolchain.build import MODULES  # the libraries each stdlib module links

            owner = self._runtime("toolchain:cpython@") or self._runtime("interpreter:")
            stem = row["path"].rsplit("/", 1)[-1].split(".", 1)[0]
            libraries = [
                lib
                for project, modules in MODULES.items()
                if stem in modules and (lib := self._runtime(f"toolchain:{project}@"))
            ]
            if owner is not None:
                return owner, libraries
        if kind == "interpreter" and (owner := self._runtime("interpreter:")) is not None:
            return owner, []
        if kind == "system" and source.startswith(("pkg:deb/", "pkg:apk/")):
            purl = PackageURL.from_string(source)
            return self.once(
                Component(
                    type=ComponentType.LIBRARY,
                    name=purl.name,
                    version=purl.version,
                    bom_ref=f"system:{source}",
                    purl=purl,
                    description="a system library the build host's package manager installed, "
                    "copied into the artifact",
                )
            ), []
        return self.artifact, []


class _Once:
    """Adds a component shared by several artifacts to the BOM once, by its bom-ref."""

    def __init__(self, bom: Bom) -> None:
        self.bom = bom
        self.seen: dict[str, Component] = {}

    def __call__(self, component: Component) -> Component:
        ref = str(component.bom_ref)
        if ref not in self.seen:
            self.seen[ref] = component
            self.bom.components.add(component)
        return self.seen[ref]


def _nuitka_runtime(entry: Mapping[str, Any], once: _Once) -> list[Component]:
    """The interpreter and the Nuitka runtime compiled into a Nuitka binary."""
    inputs = entry.get("inputs", {})
    libpython = str(inputs.get("settings", {}).get("libpython", ""))
    parts = [
        ("interpreter", ComponentType.APPLICATION, "generic", "cpython",
         interpreter_version(entry), "the Python interpreter compiled into the binary"),
        ("runtime", ComponentType.LIBRARY, "pypi", "nuitka",
         str(inputs.get("tools", {}).get("nuitka", "")), "the Nuitka runtime compiled in"),
    ]  # fmt: skip
    found = [
        once(
            Component(
                type=kind,
                name=name,
                version=version,
                bom_ref=f"{role}:{name}@{version}",
                purl=PackageURL(type=purl_type, name=name, version=version),
                description=description,
                properties=_props(libpython=libpython) if role == "interpreter" else [],
            )
        )
        for role, kind, purl_type, name, version, description in parts
        if version
    ]
    return found + _toolchain(inputs.get("tools", {}), once)


def _toolchain(tools_used: Mapping[str, Any], once: _Once) -> list[Component]:
    """The sources buildkit's hermetic toolchain compiled the interpreter in the binary
    from (CPython, OpenSSL, zlib, ...), each with its version and archive sha256, and the
    compiler (zig) it used."""
    out = []
    for key, value in sorted(tools_used.items()):
        if not key.startswith("toolchain/"):
            continue
        name = key.removeprefix("toolchain/")
        version, _, digest = str(value).partition(" sha256:")
        project = name.split("-", 1)[0]  # cpython-3.11 -> cpython
        out.append(
            once(
                Component(
                    type=ComponentType.LIBRARY,
                    name=project,
                    version=version,
                    bom_ref=f"toolchain:{project}@{version}",
                    purl=PackageURL(type="generic", name=project, version=version),
                    hashes=_sha256(digest) if digest else [],
                    description="compiled from this source archive into the binary by "
                    "buildkit's hermetic toolchain",
                )
            )
        )
    for key, value in sorted(tools_used.items()):
        if not key.startswith("toolchain-program/"):
            continue
        name = key.removeprefix("toolchain-program/")
        version, _, digest = str(value).partition(" sha256:")
        out.append(
            once(
                Component(
                    type=ComponentType.APPLICATION,
                    name=name,
                    version=version,
                    bom_ref=f"build-program:{name}@{version}",
                    purl=PackageURL(type="generic", name=name, version=version),
                    hashes=_sha256(digest) if digest else [],
                    description="built from this source archive by buildkit's hermetic "
                    "toolchain and run on the binary's files while it was built (not in it)",
                )
            )
        )
    if out and tools_used.get("zig"):
        zig = str(tools_used["zig"])
        out.append(
            once(
                Component(
                    type=ComponentType.APPLICATION,
                    name="zig",
                    version=zig,
                    bom_ref=f"compiler:zig@{zig}",
                    purl=PackageURL(type="pypi", name="ziglang", version=zig),
                    description="the C compiler of buildkit's hermetic toolchain",
                )
            )
        )
    return out
