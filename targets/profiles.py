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
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from targets.plan import DEFAULT_PREFERENCE, RUNTIME_FORMAT

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
_KEYS = {"description", "arch", "python", "threads", "runtimes", "warmup", "runs", "notes", "host", "port", "identity",
         "known_hosts"}


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str = ""
    arch: str | None = None
    python: str = "python3"
    threads: int | None = None
    runtimes: tuple[str, ...] = DEFAULT_PREFERENCE
    warmup: int = 10
    runs: int = 100
    notes: str = ""
    host: str | None = None  # a profile that names its device is a sweep target (TARGETS="<profile>")
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None

    def __post_init__(self):
        for key in ("threads", "warmup", "runs"):
            value = getattr(self, key)
            minimum = 0 if key == "warmup" else 1
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
                raise PipelineError(f"expected {key} >= {minimum} (an integer) in profile {self.name!r}, received {value!r}")
        if not isinstance(self.python, str) or not self.python.strip():
            raise PipelineError(f"expected python to be a command in profile {self.name!r}, received {self.python!r}")
        unknown = [r for r in self.runtimes if r not in RUNTIME_FORMAT]
        if not self.runtimes or unknown:
            raise PipelineError(f"expected runtimes among {sorted(RUNTIME_FORMAT)} in profile {self.name!r}, "
                                f"received {list(self.runtimes)!r}")


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load a profile by name (`raspberry-pi-4`, from targets/profiles/) or from a .toml path."""
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
