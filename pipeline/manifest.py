"""Stage 5 — manifest: what was made, from what, with which tools; one JSON per variant folder."""
from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

from pipeline.artifacts import sha256_file, write_json

MANIFEST = "manifest.json"
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


def read_manifest(variant_dir: Path) -> dict | None:
    path = Path(variant_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def weights_record(variant, weights_file: Path | None) -> dict:
    return {
        "weights": variant.weights,
        "weights_file": str(weights_file) if weights_file else None,
        "weights_sha256": sha256_file(weights_file) if weights_file else None,
    }


def update_manifest(variant_dir: Path, variant: dict, preprocessing: dict, calibration: dict | None,
                    artifacts: list[dict]) -> Path:
    """Write the manifest, keeping entries of earlier runs whose files are still there and unchanged.

    A later `make int8` after `make fp32` adds to the manifest instead of forgetting the fp32 file, but an
    entry whose variant inputs (weights, preprocessing) changed is dropped with the old run.
    """
    variant_dir = Path(variant_dir)
    old = read_manifest(variant_dir) or {}
    same_inputs = old.get("variant") == variant and old.get("preprocessing") == preprocessing
    merged = {}
    if same_inputs:
        for entry in old.get("artifacts", []):
            path = variant_dir / entry["file"]
            if path.is_file() and sha256_file(path) == entry["sha256"]:
                merged[entry["file"]] = entry
    for entry in artifacts:
        merged[entry["file"]] = entry
    if calibration is None and same_inputs:
        calibration = old.get("calibration")
    return write_json(variant_dir / MANIFEST, {
        "schema": 1,
        "variant": variant,
        "preprocessing": preprocessing,
        "calibration": calibration,
        "artifacts": sorted(merged.values(), key=lambda e: e["file"]),
        "versions": tool_versions(),
    })
