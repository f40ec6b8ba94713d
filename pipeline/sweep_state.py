"""What the sweep remembers: a content key per (variant, step) and the state file beside the artifacts.

A step is redone only when its key changed or when its outputs are no longer the files it recorded
(by sha256). A key hashes named parts, so that the sweep can say *why* it redoes a step:

| step | parts |
|---|---|
| convert `<format>` | variant (arch, alpha, resolution, task, classes, preprocessing contract), weights (sha256 of the file and of its per-resolution BatchNorm statistics), settings (the format's own: I/O dtype, N, seed, opset, metadata), calibration (sha256 of the preprocessed samples; int8 and onnx-int8 only), tools (converter and runtime versions), code (the pipeline modules that shape the files) |
| validate | settings (images, seed, gates, EVAL), tools, code; validation itself re-measures only artifacts whose sha256 it has not measured on the same images |
| benchmark | settings (threads, runs), tools, code; the files re-measured are those whose sha256 changed |

The state is `<variant folder>/sweep-state.json`, written atomically after each finished step, so a killed
sweep resumes with the next unfinished step.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from pipeline.artifacts import sha256_file, write_json

STATE = "sweep-state.json"
ROOT = Path(__file__).resolve().parents[1]

# Modules that do not shape an artifact's bytes; every other module of pipeline/ and calibration/ does,
# so a module added later counts until it is listed here.
NOT_CONVERT_CODE = {"cli.py", "demo.py", "sweep.py", "sweep_state.py", "executors.py", "report.py",
                    "report_plots.py", "report_render.py", "train.py", "android.py", "predict.py", "validate.py",
                    "metrics.py", "runtimes.py", "diagnose.py", "__init__.py"}
VALIDATE_CODE = ("pipeline/validate.py", "pipeline/metrics.py", "pipeline/runtimes.py", "pipeline/convert.py",
                 "calibration/*.py")
BENCH_CODE = ("benchmarks/runner.py", "targets/local.py", "targets/plan.py", "targets/profiles.py")
CALIBRATED = ("int8", "onnx-int8")


def digest(value) -> str:
    """sha256 of a JSON-able value (keys sorted): the same inputs give the same key on every machine."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _code(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(set(paths)):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@lru_cache(maxsize=None)
def code_digest(step: str) -> str:
    """sha256 over the sources a step's outputs depend on (see the module doc)."""
    if step == "convert":
        files = [p for p in (ROOT / "pipeline").rglob("*.py") if p.name not in NOT_CONVERT_CODE]
        files += list((ROOT / "calibration").glob("*.py"))
    else:
        patterns = VALIDATE_CODE if step == "validate" else BENCH_CODE
        files = [p for pattern in patterns for p in ROOT.glob(pattern)]
    return _code(files)


@lru_cache(maxsize=None)
def tools() -> dict:
    """Converter and runtime versions (the manifest's), plus Pillow, which resizes every image."""
    import PIL

    from pipeline.manifest import tool_versions

    return {**tool_versions(), "pillow": PIL.__version__}


def key(parts: dict) -> dict:
    """{"key": sha256 of all parts, "parts": sha256 of each}: the parts say why a key changed."""
    hashed = {name: digest(value) for name, value in parts.items()}
    return {"key": digest(hashed), "parts": hashed}


def why(new: dict, old: dict | None) -> str | None:
    """None when the keys match; otherwise what changed ("new", "calibration changed", ...)."""
    if not old or "parts" not in old:
        return "new"
    if old.get("key") == new["key"]:
        return None
    changed = [name for name, h in new["parts"].items() if old["parts"].get(name) != h]
    return f"{', '.join(changed) or 'inputs'} changed"


def files_unchanged(folder: Path, recorded: dict[str, str], manifest: dict | None = None) -> bool:
    """Every recorded file exists with its recorded sha256 (and, with a manifest, is listed with it)."""
    listed = {e["file"]: e.get("sha256") for e in (manifest or {}).get("artifacts", [])}
    for name, sha in recorded.items():
        path = folder / name
        if not path.is_file() or (manifest is not None and listed.get(name) != sha) or sha256_file(path) != sha:
            return False
    return bool(recorded)


def read_state(folder: Path) -> dict:
    path = Path(folder) / STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"schema": 1}
    return state if isinstance(state, dict) and state.get("schema") == 1 else {"schema": 1}


def write_state(folder: Path, state: dict) -> Path:
    return write_json(Path(folder) / STATE, state)
