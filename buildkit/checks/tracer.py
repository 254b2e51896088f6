"""Run a recipe's entry point as a console script would, recording what it used.

Started by buildkit's trace (never imported by buildkit itself) as::

    python -I -S tracer.py OUT_DIR APP_DIR SITE_DIR MODULE:ATTR [ARGS...]

At exit it writes ``OUT_DIR/<pid>.json``: every module in ``sys.modules`` that is what
its name says, with its file (an alias an import hook made is listed apart), the files
whose functions ran (a module whose only code run was its body, class and constant
definitions, gains nothing from being compiled), every file opened and every folder
listed. It imports nothing of its own before the program does, so what it
records is what the program imported.
"""

import sys

OUT, APP, SITE, ENTRY = sys.argv[1:5]
sys.argv = [ENTRY.partition(":")[0].split(".")[0], *sys.argv[5:]]
sys.path[0:0] = [APP, SITE]
OPENED: set[str] = set()
LISTED: set[str] = set()
RAN: set[str] = set()  # files of the functions that ran (not module or class bodies)
_THREADS: list[bool] = []  # whether threads started later are traced too


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    if not isinstance(args[0], str):
        return
    caller = sys._getframe(1).f_code.co_filename
    if caller.startswith("<frozen importlib"):
        return  # the import system reading code and listing folders, not the program
    (OPENED if event == "open" else LISTED).add(args[0])


def _ran(frame: object, event: str, arg: object) -> None:
    """The global trace function: called as each Python frame starts, never per line
    (it returns None). Threads are traced from when the program imports ``threading``."""
    code = frame.f_code  # type: ignore[attr-defined]
    if code.co_flags & 1:  # CO_OPTIMIZED: a function's body
        RAN.add(code.co_filename)
    if not _THREADS and "threading" in sys.modules:
        hook = getattr(sys.modules["threading"], "settrace", None)  # None while it loads
        if hook is not None:
            _THREADS.append(True)
            hook(_ran)


def _dump() -> None:
    modules: dict[str, str] = {}  # name -> its file ("" when it has none: built in, frozen)
    aliases: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        real = getattr(module, "__name__", None)
        if real == name:
            file = getattr(module, "__file__", None)
            modules[name] = file if isinstance(file, str) else ""
        elif isinstance(real, str):
            aliases[name] = real
    import json
    import os
    import sysconfig

    paths = sysconfig.get_paths()  # where this interpreter's standard library is
    std = paths["stdlib"]
    doc = {
        "modules": dict(sorted(modules.items())),
        "aliases": dict(sorted(aliases.items())),
        "ran": sorted(RAN),
        "opened": sorted(OPENED),
        "listed": sorted(LISTED),
        "stdlib": sorted(
            {
                std,
                os.path.join(std, "lib-dynload"),
                os.path.join(paths["platstdlib"], "lib-dynload"),
            }
        ),
    }
    with open(os.path.join(OUT, f"{os.getpid()}.json"), "w") as f:
        json.dump(doc, f)


sys.addaudithook(_hook)
sys.settrace(_ran)
__import__("atexit").register(_dump)
_module, _, _attrs = ENTRY.partition(":")
__import__(_module)
_target: object = sys.modules[_module]
for _name in _attrs.split("."):
    _target = getattr(_target, _name)
if not callable(_target):
    raise SystemExit(f"{ENTRY}: {type(_target).__name__} is not callable")
sys.exit(_target())
