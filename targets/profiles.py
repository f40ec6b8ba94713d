"""Device profiles: small declarative TOML files with the defaults for a kind of device.

    description = "Raspberry Pi 4 Model B, ..."
    arch = "aarch64"                       # what the device reports (platform.machine())
    python = "python3"                     # the device's python; "~/venv/bin/python" is relative to home
    threads = 4                            # optional; unset = the runner's default
    runtimes = ["litert", "tflite-runtime", "onnxruntime"]   # preference, first installed wins
    warmup = 10                            # optional
    runs = 100                             # optional
    notes = "..."
    host = "pi@raspberrypi.local"          # optional: the device itself, so that `make sweep TARGETS="<name>"`
    port = 22                              #   reaches it (port, identity, known_hosts optional too)
    kind = "ssh"                           # optional: the target kind that reaches host (targets/registry.py)
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.config import DeviceProfile

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
_KEYS = {"description", "arch", "python", "threads", "runtimes", "warmup", "runs", "notes", "host", "port", "identity",
         "known_hosts", "kind"}


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path | DeviceProfile) -> DeviceProfile:
    """Load a profile by name (`raspberry-pi-4`, from targets/profiles/) or from a .toml path (a loaded one is
    returned as it is)."""
    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    text = str(name_or_path)
    path = Path(text) if text.endswith(".toml") or "/" in text else PROFILE_DIR / f"{text}.toml"
    if not path.is_file():
        raise PipelineError(f"expected a profile among {available_profiles()} or a .toml file, received {text!r}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"expected valid TOML in {path}, received {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise PipelineError(f"expected profile keys among {sorted(_KEYS)} in {path}, received {unknown}")
    if "runtimes" in data:
        if not isinstance(data["runtimes"], list):
            raise PipelineError(f"expected runtimes to be a list in {path}, received {data['runtimes']!r}")
        data["runtimes"] = tuple(data["runtimes"])
    return DeviceProfile(name=path.stem, **data)
