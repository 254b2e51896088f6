"""The hardening audit: every native file (ELF, every slice of a Mach-O) found in files,
folders, zipapps, nuitka archives and onefile payloads (walk.py, onefile.py), checked with
LIEF in worker processes (elf.py, macho.py, run.py), placed in its component
(components.py), gated by a policy (policy.py) and reported as JSON, SARIF, Markdown,
HTML or a table (report.py, sarif.py, html.py, output.py)."""
