"""From a folder of photos (or any task) to an Android-ready folder in one call: `make android TASK=<folder>`.

What TFLite Model Maker did, with this project's stages: the folder is checked, a model is trained from a
backbone (or the folder's checkpoint reused when neither its files nor the settings changed), exported,
validated on the held-out split, benchmarked, and only the files that passed their gates are shipped.
A folder task never ships random weights: with no WEIGHTS it trains, and WEIGHTS=random is refused.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from mobilenet_edge.calibration.folder_checks import check_folder
from mobilenet_edge.calibration.tasks import Task, resolve_task
from mobilenet_edge.pipeline.android import export_android
from mobilenet_edge.pipeline.config import AndroidTaskConfig, ExportConfig, RecipeConfig, Variant
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.manifest import read_manifest
from mobilenet_edge.pipeline.recipe import export_variant
from mobilenet_edge.pipeline.ship import Selection, select
from mobilenet_edge.pipeline.train import train
from mobilenet_edge.pipeline.config import TrainConfig

log = logging.getLogger(__name__)

ANDROID_FORMATS = ("fp32", "fp16", "dynamic", "int8")


@dataclass(frozen=True)
class AndroidTaskResult:
    android: Path  # the folder to copy into the app's assets/
    variant_dir: Path
    checkpoint: Path | None  # the weights file used (trained, reused or given)
    trained: bool
    reused: bool
    data_problems: tuple[str, ...]
    selection: Selection


def android_from_task(cfg: AndroidTaskConfig) -> AndroidTaskResult:
    """Photos (or a task) -> OUT/<task>/<variant>/android/ with only what passed.

    Steps:
      1. weights: WEIGHTS as given; for a folder task without WEIGHTS, the folder's checkpoint if its data and
         settings are unchanged, else train one (pipeline.train: checks, transfer, fine-tuning)
      2. export fp32, fp16, dynamic and int8 .tflite, validate them on the held-out split, benchmark them
      3. ship: the files that passed their gates, with metadata, labels and a README (pipeline.android)
    """
    task = resolve_task(cfg.variant.task)
    if cfg.variant.weights == "random":
        raise PipelineError("expected trained weights to ship, received WEIGHTS=random (a random model classifies "
                            "nothing); leave WEIGHTS empty to train on the folder, or pass a checkpoint")

    # 1. weights
    checkpoint, trained, reused, problems = None, False, False, ()
    variant = cfg.variant
    check = check_folder(task.name, variant.resolution) if task.kind == "folder" else None
    if check is not None and not cfg.validation.eval_dir:
        require_held_out_per_class(check)
    if task.kind == "folder" and not variant.weights:
        folder = cfg.checkpoints or Path(cfg.out) / "checkpoints" / task.slug
        checkpoint, reused, problems = trained_or_reused(task, variant, cfg.train, folder, check)
        trained = not reused
        variant = replace(variant, weights=str(checkpoint))
    elif not variant.weights:
        variant = replace(variant, weights=task.default_weights)
    elif variant.weights not in ("imagenet", "reference"):
        checkpoint = Path(variant.weights)

    # 2. export, validate, benchmark
    from mobilenet_edge.pipeline.sweep.executors import busy_cores, usable_cores

    busy = busy_cores()  # the machine may be shared: said beside the latencies
    result = export_variant(RecipeConfig(
        variant=variant, export=ExportConfig(formats=ANDROID_FORMATS, out=cfg.out), quant=cfg.quant,
        validation=cfg.validation, bench_threads=cfg.bench_threads or usable_cores()))

    # 3. ship what passed
    android = export_android(result.variant_dir, busy_cores=busy)
    selection = select(result.variant_dir, read_manifest(result.variant_dir))
    return AndroidTaskResult(android, result.variant_dir, checkpoint, trained, reused, problems, selection)


def require_held_out_per_class(check) -> None:
    """Shipping claims a held-out top-1: a class with no held-out image would be shipped unmeasured."""
    empty = [c for c in check.classes if check.counts[c]["test"] == 0]
    if empty:
        total = {c: sum(check.counts[c].values()) for c in empty}
        raise PipelineError(
            f"expected held-out (test) images of every class to ship, received none of "
            f"{', '.join(f'{c!r} ({total[c]} images, all in train/val)' for c in empty)}; the split holds out about "
            "1 image in 5 by file name: add images to that class (20 or more) or remove its folder")


def trained_or_reused(task: Task, variant: Variant, cfg: TrainConfig, folder: Path,
                      check=None) -> tuple[Path, bool, tuple]:
    """The folder's checkpoint of `variant` if its record shows the same files (content hash) and settings;
    otherwise a newly trained one. Returns (checkpoint, reused, the data check's problem lines).
    `check`: the folder's check_folder result, when the caller has it already."""
    check = check or check_folder(task.name, variant.resolution)
    checkpoint = Path(folder) / f"{variant.name}.weights.h5"
    record_path = checkpoint.with_name(f"{variant.name}.json")
    if checkpoint.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        same = (record.get("data_sha256") == check.content_sha256 and record.get("arch") == variant.arch
                and record.get("alpha") == variant.alpha and record.get("resolution") == variant.resolution
                and record.get("config") == json.loads(json.dumps(asdict(cfg))))
        if same:
            for problem in check.problems:
                log.warning("data: %s", problem)
            log.info("reusing %s: same files and settings as when it was trained", checkpoint)
            return checkpoint, True, check.problems
        log.info("retraining %s: the folder's files or the settings changed since it was trained", checkpoint.name)
    result = train(replace(variant, weights="random"), task, cfg, folder)
    return result.checkpoint, False, check.problems
