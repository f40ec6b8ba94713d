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
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from mobilenet_edge.pipeline import formats
from mobilenet_edge.pipeline.artifacts import sha256_file, write_json
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.validate import FLOAT_MODEL, VALIDATION

if TYPE_CHECKING:
    from mobilenet_edge.calibration.tasks import Task
    from mobilenet_edge.pipeline.config import Variant
    from mobilenet_edge.pipeline.config import SweepConfig

STATE = "sweep-state.json"
BENCHMARK = "benchmark-local.json"
ROOT = Path(__file__).resolve().parents[2]

# The code a step's outputs depend on, by folder (pipeline/ mirrors the stages). Conversion: every module of
# pipeline/ and calibration/ except the stages that come after it or beside it, so that a module added later
# counts until it is listed here. Validation: its stage, the runtimes' input quantization and the datasets.
NOT_CONVERT_PACKAGES = ("validate", "report", "sweep", "train")  # sub-packages of pipeline/
NOT_CONVERT_MODULES = ("cli.py", "cli_args.py", "cli_errors.py", "show.py", "demo.py", "android.py", "android_task.py",
                       "predict.py", "ship.py", "clean.py", "mcu.py")  # relative to pipeline/
VALIDATE_CODE = ("pipeline/validate/*.py", "pipeline/convert/tflite.py", "calibration/*.py", "benchmarks/runtimes/*.py")
BENCH_CODE = ("benchmarks/runner.py", "benchmarks/runtimes/*.py", "targets/local.py", "targets/plan.py",
              "targets/profiles.py")
CONVERT_CODE_OUTSIDE = ("benchmarks/runtimes/*.py",)  # the fast-path audit that every manifest entry carries
CALIBRATED = tuple(sorted(formats.calibrated_names()))  # int8, onnx-int8


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
        pipeline = ROOT / "pipeline"
        files = [p for p in pipeline.rglob("*.py")
                 if p.relative_to(pipeline).parts[0] not in NOT_CONVERT_PACKAGES
                 and p.relative_to(pipeline).as_posix() not in NOT_CONVERT_MODULES]
        files += list((ROOT / "calibration").glob("*.py"))
        files += [p for pattern in CONVERT_CODE_OUTSIDE for p in ROOT.glob(pattern)]
    else:
        patterns = VALIDATE_CODE if step == "validate" else BENCH_CODE
        files = [p for pattern in patterns for p in ROOT.glob(pattern)]
    return _code(files)


@lru_cache(maxsize=None)
def tools() -> dict:
    """Converter and runtime versions (the manifest's), plus Pillow, which resizes every image."""
    import PIL

    from mobilenet_edge.pipeline.manifest import tool_versions

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


# ------------------------------------------------------------------------------------- keys and staleness

class Planner:
    """The content keys of a sweep's steps (see the module doc); hashes of weights and calibration are cached."""

    def __init__(self, cfg: SweepConfig, task: Task):
        self.cfg, self.task = cfg, task
        self._weights: dict[str, str] = {}
        self._calibration: dict[tuple, str] = {}

    def weights(self, variant: Variant) -> str:
        """sha256 of the weights file and of its per-resolution BatchNorm statistics ('imagenet', 'random')."""
        from mobilenet_edge.pipeline import build

        path = build.weights_path(variant)  # PipelineError when a reference checkpoint is missing
        if path is None:
            return variant.weights
        if str(path) not in self._weights:
            bn = build.batchnorm_file(path)
            self._weights[str(path)] = digest([sha256_file(path), sha256_file(bn) if bn.is_file() else None])
        return self._weights[str(path)]

    def calibration(self, variant: Variant) -> str:
        """sha256 of the preprocessed calibration samples: same images, same crop, same bytes, same key."""
        from mobilenet_edge.calibration.representative import calibration_set, uses_synthetic

        q = self.cfg.quant
        if uses_synthetic(self.task, q.calib_dir):
            # Synthetic samples are a function of the weights (their own key part) and of these settings.
            return digest(["synthetic", q.synthetic_samples, q.synthetic_steps, q.seed])
        pre = self.task.preprocessing(variant.resolution, variant.arch).to_dict()
        cache = (json.dumps(pre, sort_keys=True), q.num_samples, q.seed, q.calib_dir)
        if cache not in self._calibration:
            calib = calibration_set(self.task, variant.resolution, q.num_samples, q.seed, q.calib_dir,
                                    progress=False, arch=variant.arch)
            self._calibration[cache] = calib.samples_sha256()
        return self._calibration[cache]

    def convert_keys(self, variant: Variant) -> dict[str, dict]:
        task, q = self.task, self.cfg.quant
        base = {"variant": {"arch": variant.arch, "alpha": variant.alpha, "resolution": variant.resolution,
                            "task": task.slug, "classes": list(task.class_names),
                            "preprocessing": task.preprocessing(variant.resolution, variant.arch).to_dict()},
                "weights": self.weights(variant), "tools": tools(), "code": code_digest("convert")}
        keys = {}
        for fmt in self.cfg.formats:
            parts = {**base, "settings": {**formats.get(fmt).settings(q, self.cfg.opset), "format": fmt, "metadata": True}}
            if fmt in CALIBRATED:
                parts["calibration"] = self.calibration(variant)
            keys[fmt] = key(parts)
        return keys

    def validate_key(self) -> dict:
        v = self.cfg.validation
        return key({"settings": {"limit": v.limit, "seed": v.seed, "eval": v.eval_dir, "batch": v.batch,
                                        "gates": asdict(v.gates),
                                        **({"runtimes": list(v.runtimes)} if v.runtimes else {})},
                           "tools": tools(), "code": code_digest("validate")})

    def bench_key(self) -> dict:
        return key({"settings": {"threads": self.cfg.bench_threads, "runs": self.cfg.bench_runs},
                           "tools": tools(), "code": code_digest("benchmark")})


def stale_formats(folder: Path, keys: dict[str, dict], state: dict) -> dict[str, str]:
    """format -> why it must be converted again; formats not listed are unchanged."""
    manifest = {"artifacts": [], **(_manifest(folder) or {})}
    stale = {}
    for fmt, new in keys.items():
        old = state.get("convert", {}).get(fmt)
        reason = why(new, old)
        if reason is None and not files_unchanged(folder, old.get("files", {}), manifest):
            reason = "files changed or missing"
        if reason is None and not (folder / FLOAT_MODEL).is_file():
            reason = f"{FLOAT_MODEL} missing"
        if reason:
            stale[fmt] = reason
    return stale


def _manifest(folder: Path) -> dict | None:
    """The folder's manifest; a damaged one counts as none, so every format is converted again and the export
    rebuilds it."""
    from mobilenet_edge.pipeline.manifest import read_manifest

    try:
        return read_manifest(folder)
    except PipelineError:
        return None


def manifest_files(folder: Path) -> dict[str, str]:
    return {e["file"]: e["sha256"] for e in (_manifest(folder) or {}).get("artifacts", [])}


def validation_reason(folder: Path, new: dict, state: dict) -> str | None:
    """Why the variant must be validated again, or None."""
    old = state.get("validate")
    reason = why(new, old)
    if reason:
        return reason
    path = folder / VALIDATION
    if not path.is_file() or sha256_file(path) != old.get("file_sha256"):
        return f"{VALIDATION} changed or missing"
    if manifest_files(folder) != old.get("artifacts"):
        return "artifacts changed"
    return None


def reusable_validation(folder: Path, new: dict, state: dict) -> dict | None:
    """The earlier validation.json, when the sweep wrote it with today's validation code and settings."""
    old, path = state.get("validate") or {}, folder / VALIDATION
    if old.get("key") != new["key"] or not path.is_file() or sha256_file(path) != old.get("file_sha256"):
        return None
    return json.loads(path.read_text())


def bench_files(folder: Path, new: dict, state: dict, entry: str = "benchmark",
                file: str = BENCHMARK) -> tuple[list[str], str | None]:
    """The artifacts to time again and why (none: the benchmark is current); `entry` and `file` name another
    target's state entry and benchmark file (pipeline.sweep.targets)."""
    files = manifest_files(folder)
    old, path = state.get(entry), folder / file
    reason = why(new, old)
    if reason is None and (not path.is_file() or sha256_file(path) != old.get("file_sha256")):
        reason = f"{file} changed or missing"
    if reason:
        return sorted(files), reason
    changed = sorted(f for f, sha in files.items() if old.get("files", {}).get(f) != sha)
    return changed, "artifacts changed" if changed else None
