"""What a Nuitka onefile binary's payload (read by ``buildkit.onefile``) says about its
files: whose they are, from the build info it carries."""

from __future__ import annotations

import mmap

from ..buildinfo import MEMBER
from ..onefile import Payload
from .components import Context, _load, from_info, native_of, toolchain_of, wheel_files_of


def context(payload: Payload, data: bytes | mmap.mmap) -> Context:
    """The first payload file is the program Nuitka compiled: ours, like the bootstrap."""
    info = None
    for entry in payload.entries:
        if entry.name == MEMBER and entry.size < 1 << 20:
            info = _load(payload.blob(entry, data))
    recipe, python, wheels = from_info(info)
    own = frozenset(e.name for e in payload.entries[:1])
    return Context(
        kind="onefile",
        recipe=recipe,
        python=python,
        own=own,
        wheels=wheels,
        wheel_files=wheel_files_of(info),
        native=native_of(info),
        toolchain=toolchain_of(info),
    )
