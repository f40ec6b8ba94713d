"""The isolated tflite-support environment: the real Task Library and metadata tools, for the Android tests.

tflite-support pins protobuf<4 and numpy 1.x and clashes with TensorFlow 2.21 in one process, so it gets
its own virtualenv, created once and cached (default ~/.cache/mobilenet-edge/tflite-support-venv, or
$MOBILENET_EDGE_TFLITE_SUPPORT_VENV), and is driven through subprocesses (task_library.py beside this).
Its native code links libusb-1.0, installed with apt-get when missing.

Create it by hand with:  python tests/android_env/venv.py
"""
from __future__ import annotations

import ctypes.util
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
STAMP = ".mobilenet-edge-ready"  # written last: a venv without it is half-built and is rebuilt
PIP_TIMEOUT_S = 1200
PROBE_TIMEOUT_S = 15
IMPORT_CHECK = "from tflite_support import metadata; from tflite_support.task import vision"


class PyPIUnreachable(RuntimeError):
    """The environment cannot be built because the package index cannot be reached."""


def default_dir() -> Path:
    override = os.environ.get("MOBILENET_EDGE_TFLITE_SUPPORT_VENV")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(override) if override else cache / "mobilenet-edge" / "tflite-support-venv"


def ensure_venv(path: Path | None = None) -> Path:
    """Return the python of the tflite-support venv at `path`, creating it first if needed (idempotent)."""
    path = Path(path or default_dir())
    path.parent.mkdir(parents=True, exist_ok=True)
    python = path / "bin" / "python"
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs must not build the same venv at once
        if (path / STAMP).is_file() and (path / STAMP).read_text() == _fingerprint():
            _ensure_libusb()
            return python
        shutil.rmtree(path, ignore_errors=True)
        try:
            _run([_base_python(), "-m", "venv", str(path)], "create the venv")
            _pip_install(python)
            _ensure_libusb()
            _run([str(python), "-c", IMPORT_CHECK], "import tflite-support")
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        (path / STAMP).write_text(_fingerprint())
    return python


def _fingerprint() -> str:
    return f"{hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()} python {platform.python_version()}\n"


def _base_python() -> str:
    # The interpreter behind the main .venv: same Python 3.11, and venv-creating works from it.
    return getattr(sys, "_base_executable", None) or sys.executable


def _pip_install(python: Path) -> None:
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    if proc.returncode == 0:
        return
    output = _last_lines(proc.stdout + proc.stderr)
    index = _index_url(python)
    try:  # pip's own messages do not say reliably whether the index was reachable, so ask it directly
        urllib.request.urlopen(f"{index.rstrip('/')}/tflite-support/", timeout=PROBE_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        raise PyPIUnreachable(f"{index}: {exc}") from None
    raise RuntimeError(f"pip could not install {REQUIREMENTS.name} although {index} is reachable:\n{output}")


def _index_url(python: Path) -> str:
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    proc = subprocess.run([str(python), "-m", "pip", "config", "get", "global.index-url"], capture_output=True,
                          text=True)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "https://pypi.org/simple"


def _ensure_libusb() -> None:
    if ctypes.util.find_library("usb-1.0"):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError("tflite-support needs libusb-1.0 (Debian: apt-get install libusb-1.0-0)")
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "libusb-1.0-0"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)  # stale package lists
        _run(install, "apt-get install libusb-1.0-0", env=env)


def _run(cmd: list[str], what: str, env: dict | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=PIP_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"could not {what}:\n{_last_lines(proc.stdout + proc.stderr)}")


def _last_lines(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


if __name__ == "__main__":
    print(ensure_venv(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
