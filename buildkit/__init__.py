"""buildkit: compile Python ops scripts into reproducible, hardened single-file artifacts."""

__version__ = "0.1.0"
