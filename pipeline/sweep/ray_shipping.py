"""Ray jobs on nodes that share no disk with the driver: the files travel through Ray's object store.

Driver side, `pack`: the job's inputs become bytes and arrays inside the task's arguments
  - the variant folder as the driver has it (manifest, model.keras, artifacts, validation.json, sweep.log),
  - a weights file given by path, with the files beside it that share its stem (training record, BatchNorm
    statistics),
  - the calibration samples, preprocessed here (a CalibrationSet), instead of CALIB's image folder.
Worker side, `run_shipped`: a private temporary folder receives them, `run_job` runs against it, and every
file it wrote or changed under that folder comes back with the result (paths relative to OUT); the folder
is removed. Driver side, `unpack`: each file is written atomically into OUT.

The files must come out byte for byte as the process executor writes them, so the worker records the
driver's paths: a shipped weights file is loaded from the temporary folder, and manifest.json's
`weights_file` is set back to the driver's path before it travels back. What is not shipped must be
where the driver has it on every node: the project (with its reference checkpoints), the task's dataset
(Fashion-MNIST: /usr/share/datasets/fashion-mnist; a folder task or EVAL: the same path).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import write_bytes, write_json
from mobilenet_edge.pipeline.sweep.jobs import Job, JobResult

NAMED_WEIGHTS = ("imagenet", "random", "reference")


@dataclass(frozen=True)
class Shipment:
    """A job's input files (path relative to OUT, or `weights/<name>`) and the driver's weights path."""
    files: dict
    weights: str | None = None  # the driver's weights file, when one was shipped


@dataclass(frozen=True)
class Returned:
    """What a shipped job sends back: its result, the files it wrote or changed, and those it removed."""
    result: JobResult
    files: dict
    removed: tuple[str, ...] = ()


def _folder(job: Job) -> Path:
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import variant_dir

    return variant_dir(Path(job.recipe.export.out), resolve_task(job.recipe.variant.task), job.recipe.variant)


def pack(job: Job) -> tuple[Job, Shipment]:
    """The job as the worker runs it (calibration samples inside) and the files it needs."""
    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.recipe import needs_calibration

    out, folder, files = Path(job.recipe.export.out), _folder(job), {}
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            files[str(path.relative_to(out))] = path.read_bytes()
    weights = job.recipe.variant.weights
    shipped_weights = None
    if weights not in NAMED_WEIGHTS and Path(weights).is_file():
        source = Path(weights)
        stem = source.name.split(".")[0]
        for sibling in sorted(source.parent.glob(f"{stem}.*")):
            files[f"weights/{sibling.name}"] = sibling.read_bytes()
        shipped_weights = str(source)
    recipe = job.recipe
    if job.step == "convert" and needs_calibration(recipe.export.formats) and recipe.calibration is None:
        variant, quant = recipe.variant, recipe.quant
        calib = calibration_set(resolve_task(variant.task), variant.resolution, quant.num_samples, quant.seed,
                                quant.calib_dir, arch=variant.arch)
        recipe = replace(recipe, calibration=calib)
    return replace(job, recipe=recipe), Shipment(files, shipped_weights)


def run_shipped(job: Job, shipment: Shipment) -> Returned:
    """On the worker: run `job` in a private folder holding `shipment`; return what it wrote."""
    from mobilenet_edge.pipeline.sweep.jobs import run_job

    root = Path(tempfile.mkdtemp(prefix="mobilenet-edge-job-"))
    try:
        out = root / "out"
        out.mkdir()
        for rel, data in shipment.files.items():
            path = root / rel if rel.startswith("weights/") else out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        recipe = replace(job.recipe, export=replace(job.recipe.export, out=out))
        if shipment.weights:
            recipe = replace(recipe, variant=replace(recipe.variant, weights=str(root / "weights" / Path(shipment.weights).name)))
        result = run_job(replace(job, recipe=recipe))
        written, removed = {}, []
        for path in sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rel = str(path.relative_to(out))
            data = path.read_bytes()
            if rel.endswith("manifest.json") and shipment.weights:
                data = _driver_weights_path(path, shipment.weights)
            if shipment.files.get(rel) != data:
                written[rel] = data
        removed = [rel for rel in shipment.files if not rel.startswith("weights/") and not (out / rel).is_file()]
        return Returned(result, written, tuple(removed))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _driver_weights_path(manifest: Path, weights: str) -> bytes:
    """manifest.json as the driver would have written it: its weights path, not the worker's."""
    doc = json.loads(manifest.read_text())
    if doc.get("variant", {}).get("weights_file"):
        doc["variant"]["weights"] = doc["variant"]["weights_file"] = weights
        write_json(manifest, doc)
    return manifest.read_bytes()


def unpack(out: Path, returned: Returned) -> JobResult:
    """On the driver: write the job's files into OUT atomically, remove what it removed; its result."""
    out = Path(out)
    for rel, data in returned.files.items():
        target = (out / rel).resolve()
        if out.resolve() not in target.parents:  # only ever inside OUT
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target, data)
    for rel in returned.removed:
        target = (out / rel).resolve()
        if out.resolve() in target.parents and target.is_file():
            os.remove(target)
    return returned.result
