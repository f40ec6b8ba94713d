"""The one recipe: build → cost → calibrate → convert → manifest → validate → benchmark → report.

`export_variant` is what the CLI and the Makefile call; every step is a plain function of another
module, skippable through the config, and numbered here as in the docstring.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.calibration.images import find_images
from mobilenet_edge.calibration.representative import CalibrationSet, calibration_set, uses_synthetic
from mobilenet_edge.calibration.synthetic import SOURCE as SYNTHETIC, SyntheticConfig
from mobilenet_edge.calibration.tasks import Task, resolve_task
from mobilenet_edge.pipeline import build
from mobilenet_edge.pipeline.cost import table as cost
from mobilenet_edge.pipeline.artifacts import atomic_path, write_text
from mobilenet_edge.pipeline import formats
from mobilenet_edge.pipeline.config import QuantConfig, RecipeConfig, Variant
from mobilenet_edge.pipeline.convert.tflite import Artifact
from mobilenet_edge.pipeline.errors import PipelineError, system_error
from mobilenet_edge.pipeline.clean import claim_output
from mobilenet_edge.pipeline.convert.fastpath import also_audited, audit_entries
from mobilenet_edge.pipeline.convert.gpu_compat import gpu_compat
from mobilenet_edge.pipeline.limits import check_before_work
from mobilenet_edge.pipeline.manifest import CALIBRATED, entry_format, update_manifest, weights_record
from mobilenet_edge.pipeline.validate import FLOAT_MODEL, ValidationResult, validate

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RecipeResult:
    variant_dir: Path
    artifacts: tuple[Artifact, ...]
    manifest: Path
    validation: ValidationResult | None = None
    benchmark: Path | None = None
    report: Path | None = None


def warn_if_off_resolution(checkpoint: Path, resolution: int) -> None:
    """A checkpoint trained at one input side can be far worse at another: say so before converting it."""
    record = build.checkpoint_info(checkpoint)
    trained = build.trained_resolutions(record)
    if trained and resolution not in trained:
        measured = record.get("accuracy_by_resolution", {}).get(str(resolution))
        figure = f"its float top-1 there is {100 * measured:.1f} %" if measured is not None else "its accuracy there is unmeasured"
        log.warning("%s was trained at %s px and is used at %d px: %s (at %d px: %.1f %%); "
                    "use RES in %s or train at this size with `make train RES=%d`", checkpoint.name,
                    "/".join(map(str, trained)), resolution, figure, record["resolution"],
                    100 * record.get("test_top1", 0), trained, resolution)


def variant_dir(out: Path, task: Task, variant: Variant) -> Path:
    return Path(out) / task.slug / variant.name


def ensure_writable(folder: Path) -> None:
    """Fail before any work if OUT cannot take files, rather than after minutes of conversion."""
    probe = folder / f".probe-{secrets.token_hex(6)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        refused = system_error(exc, folder)
        if refused is not None:  # read-only, full, not permitted: the system's, exit 1
            raise refused from None
        raise PipelineError(f"expected a writable output folder, received OUT={folder} ({exc.strerror or exc})") from None
    finally:  # named before it exists: a Ctrl-C while it is created still removes it
        with contextlib.suppress(OSError):  # e.g. OUT is a file: the error above is the one to report
            probe.unlink(missing_ok=True)


def needs_calibration(names) -> bool:
    return formats.needs_samples(names)


def calibration_count_and_seed(task: Task, quant: QuantConfig) -> tuple[int, int]:
    """(samples, seed): synthetic samples cost optimisation steps each, so they have their own count."""
    count = quant.synthetic_samples if uses_synthetic(task, quant.calib_dir) else quant.num_samples
    return count, quant.seed


def save_float_model(model, folder: Path) -> Path:
    with atomic_path(folder / FLOAT_MODEL) as tmp:
        model.save(tmp)
    return folder / FLOAT_MODEL


def _metadata_writer(cfg: RecipeConfig, task: Task, calib: CalibrationSet | None, weights_file: Path | None):
    if not cfg.metadata:
        return None
    from mobilenet_edge.pipeline.convert.metadata import metadata_for_variant

    return metadata_for_variant(cfg.variant, task, calib, weights_file)


def convert_all(model, cfg: RecipeConfig, task: Task, folder: Path, calib: CalibrationSet | None,
                weights_file: Path | None, on_artifact=None) -> list[Artifact]:
    """Step 4: every requested format, in the format registry's order (TFLite first, then ONNX: int8 reuses the
    fp32 ONNX file); each format's converter is its record's (pipeline/formats/).

    `on_artifact(artifact)` runs as soon as each file is written (the recipe lists it in the manifest then).
    """
    # Only the int8 files name their calibration set: each file's bytes then depend on its own inputs alone,
    # so the sweep redoes just the int8 files when N or CALIB change (and an fp32 file claims no calibration).
    made = []

    def add(artifact: Artifact) -> None:
        made.append(artifact)
        if on_artifact is not None:
            on_artifact(artifact)

    budget = None
    if cfg.quant.budget is not None:  # BUDGET: int8 files searched within an accuracy budget (pipeline/budget/)
        from mobilenet_edge.pipeline.budget.trials import budget_search

        budget = budget_search(model, cfg, task, folder, calib)
    ctx = formats.ConvertContext(model, cfg, task, folder, calib, add,
                                 add_metadata=_metadata_writer(cfg, task, calib, weights_file),
                                 float_metadata=_metadata_writer(cfg, task, None, weights_file), budget=budget)
    for fmt in formats.all_formats():
        if fmt.name in cfg.export.formats:
            fmt.convert(ctx)
    return made


def export_variant(cfg: RecipeConfig) -> RecipeResult:
    """Make every requested artifact of one variant, then (optionally) validate, benchmark and report.

    Steps:
      1. build the Keras model (alpha, input side, the task's classes, weights)
      2. cost: the paper's per-layer table (cost.json)
      3. calibrate: representative samples from CALIB or the task's training split
      4. convert: TFLite fp32/fp16/dynamic/int8, ONNX fp32/int8 — each loaded once to prove it runs
      5. manifest: files, hashes, tensor specs, fast-path audit, preprocessing contract, calibration, tool versions
      6. validate (optional): drift of every artifact against the float model on held-out images
      7. benchmark (optional): latency on this machine with the standalone runner
      8. report (optional): OUT/report.md|html, summary.json, plots
    """
    variant, out = cfg.variant, cfg.export.out
    task = resolve_task(variant.task)
    folder = variant_dir(out, task, variant)
    # A variant that cannot be built (a layer with zero channels) or cannot fit in memory fails before OUT is touched.
    check_before_work(variant, task, cfg.quant.num_samples if needs_calibration(cfg.export.formats) else None,
                      cfg.validation)
    if (cfg.quant.calib_dir not in (None, "", SYNTHETIC) and needs_calibration(cfg.export.formats)
            and cfg.calibration is None):
        find_images(cfg.quant.calib_dir)  # a missing or empty CALIB fails now, not after the build
    created = not folder.exists()
    claim_output(out)
    ensure_writable(folder)
    try:
        return _export(cfg, task, folder)
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a failed first export leaves no empty variant folder behind
        raise


def _export(cfg: RecipeConfig, task: Task, folder: Path) -> RecipeResult:
    variant, out = cfg.variant, cfg.export.out
    # 1. build
    model = build.build_model(variant, task.num_classes)
    weights_file = build.weights_path(variant)
    record = {"arch": variant.arch, "name": variant.name, "alpha": variant.alpha,
              "resolution": variant.resolution, "rho": round(variant.rho, 4), "task": task.slug,
              "classes": task.num_classes, "class_names": list(task.class_names),
              **weights_record(variant, weights_file)}
    preprocessing = task.preprocessing(variant.resolution, variant.arch).to_dict()

    # 3. calibrate, before anything in the folder changes: bad CALIB images (or Ctrl-C during data-free
    # calibration) leave the manifest and every file exactly as they were
    calib = cfg.calibration if needs_calibration(cfg.export.formats) else None
    if needs_calibration(cfg.export.formats) and calib is None:
        calib = calibration_set(task, variant.resolution, *calibration_count_and_seed(task, cfg.quant),
                                cfg.quant.calib_dir, arch=variant.arch, model=model,
                                synthetic=SyntheticConfig(steps=cfg.quant.synthetic_steps))

    # Before any file is replaced, its old entry leaves the manifest and its file the folder: an interrupted
    # re-export never leaves a manifest that vouches for a file (sha256, calibration) it no longer describes,
    # nor a file on disk that the manifest does not list.
    update_manifest(folder, record, preprocessing, None, [], replacing=set(cfg.export.formats))

    if variant.weights == "reference":
        warn_if_off_resolution(weights_file, variant.resolution)
    save_float_model(model, folder)
    write_text(folder / "labels.txt", "\n".join(task.class_names) + "\n")

    # 2. cost
    cost.write_cost(cost.cost_table(variant.alpha, variant.resolution, task.num_classes, arch=variant.arch),
                    folder / "cost.json")

    # 4. convert, each file listed in the manifest as soon as it is written (step 5 as it goes), with the
    # audit of which of its ops run on XNNPACK / integer kernels (pipeline.convert.fastpath)
    entries: list[dict] = []

    def listed(artifact: Artifact) -> None:
        entry = audit_entries(folder, [artifact.to_dict()])[0]
        if entry["format"] == "tflite":  # what the Android GPU delegate would leave to the CPU
            entry["gpu"] = gpu_compat(folder / entry["file"]).to_dict()
        # the runtimes measured beside the default one (OpenVINO): which layers they run in int8 / float
        entry.update(also_audited(folder / entry["file"]))
        if calib is not None and entry_format(entry) in CALIBRATED:
            entry["calibration_sha256"] = calib.digest  # the calibration this file was made with
        entries.append(entry)
        update_manifest(folder, record, preprocessing, calib.to_dict() if "calibration_sha256" in entry else None,
                        [entry])

    artifacts = convert_all(model, cfg, task, folder, calib, weights_file, on_artifact=listed)

    # 5. manifest
    manifest = update_manifest(folder, record, preprocessing, calib.to_dict() if calib else None, entries)

    # 6. validate
    validation = validate(folder, task, cfg.validation) if cfg.validation else None

    # 7. benchmark
    benchmark = None
    if cfg.bench_threads is not None:
        from mobilenet_edge.targets.local import bench_local

        benchmark = bench_local(folder, threads=cfg.bench_threads)

    # 8. report
    report = None
    if cfg.report:
        from mobilenet_edge.pipeline.report import write_report

        report = write_report(out).markdown
    return RecipeResult(folder, tuple(artifacts), manifest, validation, benchmark, report)
