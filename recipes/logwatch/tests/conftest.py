import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "src"))

# Compile logscan (the C scanner) once into a private folder and import it from there.
_built = Path(tempfile.mkdtemp(prefix="logscan-"))
atexit.register(shutil.rmtree, _built, ignore_errors=True)
subprocess.run(
    [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
     "--no-build-isolation", "--target", str(_built), str(HERE / "native" / "logscan")],
    check=True,
)  # fmt: skip
sys.path.insert(0, str(_built))
