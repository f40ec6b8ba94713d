"""Stage 5 — manifest: what was made, from what, with which tools; one JSON per variant folder."""
from __future__ import annotations

import json
import logging
import platform
from importlib import metadata
from pathlib import Path

from mobilenet_edge.pipeline import formats
from mobilenet_edge.pipeline.artifacts import sha256_file, write_json
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CALIBRATED = formats.calibrated_names()  # formats whose files depend on the calibration record (int8, onnx-int8)
TOOLS = ("tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy")


def tool_versions() -> dict:
    versions = {}
    for dist in TOOLS:
        try:
            versions[dist.replace("-cpu", "").replace("-", "_")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist.replace("-cpu", "").replace("-", "_")] = None
    versions["python"] = platform.python_version()
    return versions


REQUIRED = ("schema", "variant", "preprocessing", "artifacts")


def read_manifest(variant_dir: Path, expect: str | None = None) -> dict | None:
    """The folder's manifest, or None when it has none.

    Raises PipelineError (one line: what was expected, what was found, how to recover) when the file is not
    a manifest — invalid JSON, empty, a key missing — or, with `expect`, belongs to another variant.
    """
    path = Path(variant_dir) / MANIFEST
    if not path.is_file():
        return None
    problem = manifest_problem(path, expect)
    if problem:
        raise PipelineError(f"expected {path} to be the manifest of {expect or Path(variant_dir).name} "
                            f"(a JSON object with {', '.join(REQUIRED)}), received {problem}; to recover, export "
                            "the variant again (e.g. `make all` with the same ARCH, ALPHA, RES, TASK and OUT): the "
                            "export rebuilds the manifest from the files it writes")
    return json.loads(path.read_text())


def manifest_problem(path: Path, expect: str | None = None, required=REQUIRED) -> str | None:
    """What is wrong with the manifest at `path` (None: nothing); `required`: the keys the reader needs."""
    text = path.read_text(errors="replace")
    if not text.strip():
        return "an empty file"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return f"invalid JSON ({getattr(exc, 'msg', exc)} at line {getattr(exc, 'lineno', '?')})"
    return manifest_problem_of(data, expect, required)


def manifest_problem_of(data, expect: str | None = None, required=REQUIRED) -> str | None:
    """What is wrong with a parsed manifest (None: nothing)."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}"
    missing = [k for k in required if k not in data]
    if missing:
        return f"no {', '.join(missing)}"
    if not isinstance(data["variant"], dict) or not isinstance(data["artifacts"], list):
        return "a variant or artifacts entry of the wrong shape"
    bad = malformed_entries(data["artifacts"])
    if bad:
        return "; ".join(bad)
    if expect is not None and data["variant"].get("name") != expect:
        return f"the manifest of {data['variant'].get('name')!r}"
    return None


def malformed_entries(entries: list) -> list[str]:
    """One phrase per artifacts entry a reader cannot use, naming it: "artifacts[2] (x.tflite) without sha256"."""
    bad = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            bad.append(f"artifacts[{i}] a JSON {type(e).__name__}, not an object")
            continue
        missing = [k for k in ("file", "sha256") if not isinstance(e.get(k), str)]
        if missing:
            bad.append(f"artifacts[{i}] ({e.get('file', 'no file name')}) without {' and '.join(missing)}")
    return bad


def entry_format(entry: dict) -> str | None:
    """The format name of a manifest entry (fp32 | fp16 | dynamic | int8 | onnx | onnx-int8, see
    pipeline/formats/), from its `format` (the container) and `precision`; None for a format no record has."""
    fmt = formats.of_entry(entry)
    return fmt.name if fmt else None


def _previous(variant_dir: Path, variant: dict) -> dict:
    """The manifest an export builds on; a damaged one or another variant's is replaced (logged), not fatal.

    Entries a reader cannot use (no sha256, say) are named and left out; the valid ones are kept.
    """
    path = Path(variant_dir) / MANIFEST
    if not path.is_file():
        return {}
    problem = manifest_problem(path, variant.get("name"))
    if problem:
        data = _salvage(path, variant.get("name"))
        if data is None:
            log.warning("%s was %s: rebuilding it from the files this export writes", path, problem)
            return {}
        log.warning("%s had %s: those entries are dropped, the valid ones kept", path, problem)
        return data
    return json.loads(path.read_text())


def _salvage(path: Path, name: str | None) -> dict | None:
    """The manifest at `path` without its malformed entries, when those are all that is wrong with it."""
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("artifacts"), list):
        return None
    good = [e for e in data["artifacts"] if isinstance(e, dict) and not malformed_entries([e])]
    data = {**data, "artifacts": good}
    return data if manifest_problem_of(data, name) is None else None


def weights_record(variant, weights_file: Path | None) -> dict:
    return {
        "weights": variant.weights,
        "weights_file": str(weights_file) if weights_file else None,
        "weights_sha256": sha256_file(weights_file) if weights_file else None,
    }


def update_manifest(variant_dir: Path, variant: dict, preprocessing: dict, calibration: dict | None,
                    artifacts: list[dict], replacing=()) -> Path:
    """Write the manifest, keeping entries of earlier runs whose files are still there and unchanged.

    A later `make int8` after `make fp32` adds to the manifest instead of forgetting the fp32 file, but an
    entry whose variant inputs (weights, preprocessing) changed is dropped with the old run. `replacing`:
    formats (FORMATS names) about to be rewritten, whose old entries go now, before their files are replaced;
    a calibrated format among them drops the calibration record too (its new one comes with its file).
    Calibrated entries name the calibration they were made with (`calibration_sha256`); a new calibration
    record drops those made with another, so the record is true of every int8 file the manifest lists.
    """
    variant_dir = Path(variant_dir)
    old = _previous(variant_dir, variant)
    same_inputs = old.get("variant") == variant and old.get("preprocessing") == preprocessing
    merged, dropped = {}, []
    old_calibration = (old.get("calibration") or {}).get("sha256")
    for entry in old.get("artifacts", []):
        path = variant_dir / entry["file"]
        if same_inputs and entry_format(entry) not in replacing and path.is_file() and \
                sha256_file(path) == entry["sha256"]:
            if entry_format(entry) in CALIBRATED and old_calibration:  # entries older than the field
                entry = {**entry, "calibration_sha256": entry.get("calibration_sha256", old_calibration)}
            merged[entry["file"]] = entry
        else:
            dropped.append(entry["file"])
    for entry in artifacts:
        merged[entry["file"]] = entry
    if calibration is not None:
        stale = {f for f, e in merged.items()
                 if entry_format(e) in CALIBRATED and e.get("calibration_sha256") != calibration.get("sha256")}
        dropped += sorted(stale)
        merged = {f: e for f, e in merged.items() if f not in stale}
    if calibration is None and same_inputs and not set(replacing) & CALIBRATED:
        calibration = old.get("calibration")
    new_files = {e["file"] for e in artifacts}
    for file in dropped:  # unlisted is removed: no file on disk that the manifest does not vouch for
        path = variant_dir / file
        if file not in new_files and path.is_file() and path.parent == variant_dir:
            log.info("removed %s: %s", file, "replaced by this export" if same_inputs else
                     "made from other weights or preprocessing than this export's")
            path.unlink()
    return write_json(variant_dir / MANIFEST, {
        "schema": 1,
        "variant": variant,
        "preprocessing": preprocessing,
        "calibration": calibration,
        "artifacts": sorted(merged.values(), key=lambda e: e["file"]),
        "versions": tool_versions(),
    })
