"""Stage 6 — validate: accuracy drift of every artifact against the float Keras model.

All models see the same held-out images (the task's test split or an EVAL folder, never the calibration
samples). With labels: top-1/top-5 and the drop in points; always: top-1 agreement, KL, SQNR, |Δ|.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from mobilenet_edge.calibration.preprocessing import Preprocessing
from mobilenet_edge.calibration.tasks import LabeledImages, Task, imagenet_folder
from mobilenet_edge.pipeline import formats, limits
from mobilenet_edge.pipeline.validate import runtimes
from mobilenet_edge.pipeline.artifacts import sha256_file, write_json
from mobilenet_edge.pipeline.config import Gates, ValidationConfig
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.validate.intervals import PairedCounts, check_agreement, check_drop, combined, drop_interval_points, \
    paired_counts, proportion_interval
from mobilenet_edge.pipeline.manifest import read_manifest
from mobilenet_edge.pipeline.validate.metrics import drift_metrics, topk_accuracy

log = logging.getLogger(__name__)

VALIDATION = "validation.json"
FLOAT_MODEL = "model.keras"
DIAGNOSIS = "diagnosis.json"


def check_gate(gates: Gates, precision: str, metrics: dict, labelled: bool,
           counts: PairedCounts | None = None) -> dict:
    """The gate of one artifact under `gates`; with `counts`, decided on exact counts with 95 % intervals (intervals.py).

    Int8 with labels must also keep `int8_agreement`: a lucky gain in top-1 on few images must not hide
    an artifact that disagrees with float on many of them.
    """
    key, limit = gates.rule(precision, labelled)
    if counts is None:
        value = metrics[key]
        passed = value <= limit if key == "top1_drop_points" else value >= limit
        op = "<=" if key == "top1_drop_points" else ">="
        return {"rule": f"{key} {op} {limit}", "value": value, "passed": bool(passed)}
    if key == "top1_agreement":
        return combined([check_agreement(counts, limit)])
    checks = [check_drop(counts, limit)]
    if precision == "int8":
        checks.append(check_agreement(counts, gates.int8_agreement))
    return combined(checks)


@dataclass(frozen=True)
class ValidationResult:
    path: Path
    passed: bool
    failures: tuple[str, ...]  # "mobilenet_..._int8.tflite: top1_drop_points 1.8 > 1.0"


def interval_metrics(counts: PairedCounts) -> dict:
    """The paired counts and 95 % intervals that go beside the point metrics (validation.json, additive)."""
    extra = {"counts": counts.to_dict(), "top1_agreement_interval": list(proportion_interval(counts.agree, counts.n))}
    if counts.float_only is not None:
        extra["top1_drop_interval_points"] = list(drop_interval_points(counts))
    return extra


def gate_failure(row: dict) -> str:
    """"file: metric = value, expected <= limit (95 % interval lo..hi)" for each failing check of a row."""
    checks = row["gate"].get("checks") or [row["gate"]]
    parts = []
    for c in checks:
        if c["passed"]:
            continue
        key, *rest = c["rule"].split()
        interval = f" (95 % interval {c['interval'][0]:.4g}..{c['interval'][1]:.4g}; {c['verdict']})" if "interval" in c else ""
        parts.append(f"{key} = {c['value']:.4g}, expected {' '.join(rest)}{interval}")
    return f"{row['file']}: " + "; ".join(parts)


def float_reference(variant_dir: Path, pixels, normalize, batch: int, progress=None):
    """The float model's probabilities on `pixels`: the variant folder's model.keras, the one reference that
    validation and the BUDGET search (pipeline/budget/) both measure every artifact against."""
    model = runtimes.KerasModel(Path(variant_dir) / FLOAT_MODEL, batch)
    return runtimes.predict(model, pixels, normalize, progress)


def held_out_images(task: Task, resolution: int, cfg: ValidationConfig) -> LabeledImages:
    if cfg.eval_dir:
        if task.kind == "imagenet":
            return _warn_if_cut(imagenet_folder(cfg.eval_dir, task.preprocessing(resolution), task.synsets, cfg.limit,
                                                cfg.seed), cfg.limit)
        raise PipelineError(f"expected EVAL only with TASK=imagenet, received EVAL with TASK={task.name}")
    return _warn_if_cut(task.labeled_images("test", resolution, limit=cfg.limit, seed=cfg.seed), cfg.limit)


def _warn_if_cut(images: LabeledImages, limit: int | None) -> LabeledImages:
    """LIMIT above the images there are: one warning line; validation.json records both (images, requested)."""
    if limit is not None and len(images.pixels) < limit:
        log.warning("validation: LIMIT=%d asked for more held-out images than %s holds: measured on %d",
                    limit, images.source, len(images.pixels))
    return images


def _diagnosis(variant_dir: Path, manifest: dict, rows: list[dict]) -> dict | None:
    """diagnosis.json plus what selective quantization bought (accuracy) and cost (size) vs. full int8."""
    path = variant_dir / DIAGNOSIS
    if not path.is_file():
        return None
    import json

    diagnosis = json.loads(path.read_text())
    entries = {e["file"]: e for e in manifest["artifacts"]}
    full = next((r for r in rows if r["precision"] == "int8" and r["format"] == "tflite" and r["per_channel"]
                 and "keep_float" not in entries[r["file"]]), None)
    for row in rows:
        kept = entries[row["file"]].get("keep_float")
        if kept and full:
            m, f = row["metrics"], full["metrics"]
            diagnosis["selective"] = {
                "file": row["file"], "keep_float": len(kept), "layers": kept,
                "top1": m.get("top1"), "top1_agreement": m["top1_agreement"], "sqnr_db": m["sqnr_db"],
                "full_int8_top1": f.get("top1"), "full_int8_agreement": f["top1_agreement"],
                "full_int8_sqnr_db": f["sqnr_db"], "bytes": entries[row["file"]]["bytes"],
                "full_int8_bytes": entries[full["file"]]["bytes"],
            }
    return diagnosis


def _reusable(previous: dict | None, images: LabeledImages, cfg: ValidationConfig) -> dict[str, dict]:
    """Rows of an earlier validation.json measured on the same images with the same gates, by (artifact sha256,
    extra runtime or None); validate() keeps those whose runtime_version is the installed one."""
    if not previous or previous.get("images_sha256") != images.digest or previous.get("gates") != asdict(cfg.gates):
        return {}
    return {(row["sha256"], row.get("runtime")): row for row in previous.get("artifacts", []) if row.get("sha256")}


def _gate_rule(entry: dict) -> str:
    """Which of the gates validates a manifest entry: its format's (pipeline/formats/), else its precision's."""
    fmt = formats.of_entry(entry)
    return fmt.gate_rule if fmt else entry["precision"]


def _sha256(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def validate(variant_dir: Path, task: Task, cfg: ValidationConfig = ValidationConfig(),
             reuse: dict | None = None) -> ValidationResult:
    """Run the float model and every artifact of the manifest on the held-out images; write validation.json.

    `reuse`: an earlier validation.json of this folder (the sweep passes it when the validation code and
    settings are unchanged); an artifact whose sha256 it already measured on the same images keeps its row.
    """
    variant_dir = Path(variant_dir)
    manifest = read_manifest(variant_dir, expect=variant_dir.name)
    if manifest is None or not (variant_dir / FLOAT_MODEL).is_file():
        raise PipelineError(f"expected a converted variant folder (manifest.json, {FLOAT_MODEL}), received {variant_dir}")
    resolution = manifest["variant"]["resolution"]
    limits.check_fits(limits.export_estimate(resolution, manifest["variant"].get("alpha") or 1.0, None,
                                             limits.held_out_count(task, cfg.limit, cfg.eval_dir), cfg.batch),
                      "validation")
    images = held_out_images(task, resolution, cfg)
    # The variant's own recorded contract: V3 models take 0..255 pixels, V1/V2 [-1, 1].
    pixels, normalize = images.pixels, Preprocessing.from_dict(manifest["preprocessing"]).normalize
    labels = images.labels
    labelled = labels is not None

    known = _reusable(reuse, images, cfg)
    # Rows are filed under the sha256 of the file measured, which the report checks against its manifest entry.
    measured = {e["file"]: _sha256(variant_dir / e["file"]) for e in manifest["artifacts"]}
    for e in manifest["artifacts"]:
        if measured[e["file"]] not in (None, e["sha256"]):
            log.warning("validate %s: %s changed since manifest.json listed it; its row names the file measured",
                        variant_dir.name, e["file"])
    # One row per artifact with its container's default runtime (no "runtime" key), and one per artifact and
    # each of cfg.runtimes that runs its container (rows with "runtime": the runner name).
    jobs = [(e, r) for e in manifest["artifacts"]
            for r in (None, *runtimes.extra_runtimes(e["file"], cfg.runtimes))]
    # A row is measured again when the runtime's installed version is not the one that measured it.
    versions = {(e["file"], r): runtimes.installed_version(r or runtimes.runtimes_for(variant_dir / e["file"])[0])
                for e, r in jobs}
    wanted = {(measured[e["file"]], r): versions[(e["file"], r)] for e, r in jobs}
    known = {key: row for key, row in known.items() if key in wanted and row.get("runtime_version") == wanted[key]}
    todo = [(e, r) for e, r in jobs if (measured[e["file"]], r) not in known]
    with tqdm(total=len(pixels) * (1 + len(todo)), desc=f"validate {variant_dir.name}",
              unit="img", leave=False) as bar:
        reference = float_reference(variant_dir, pixels, normalize, cfg.batch, bar)
        rows = []
        for entry, runtime in jobs:
            sha = measured[entry["file"]]
            if (sha, runtime) in known:
                rows.append({**known[(sha, runtime)], "file": entry["file"]})
                continue
            model = runtimes.load(variant_dir / entry["file"], cfg.batch, cfg.threads, runtime)
            probs = runtimes.predict(model, pixels, normalize, bar)
            metrics = drift_metrics(reference, probs, labels)
            counts = paired_counts(reference, probs, labels)
            metrics.update(interval_metrics(counts))
            gate = check_gate(cfg.gates, _gate_rule(entry), metrics, labelled, counts)
            # Per-tensor int8 exists to show the collapse, so it is reported but does not fail the run.
            gate["enforced"] = entry.get("per_channel") is not False
            rows.append({"file": entry["file"], "format": entry["format"], "precision": entry["precision"],
                         "per_channel": entry.get("per_channel"), "sha256": sha,
                         **({"runtime": runtime} if runtime else {}),
                         "runtime_version": versions[(entry["file"], runtime)], "metrics": metrics, "gate": gate})
    if known:
        log.info("validate %s: %d artifact(s) measured, %d unchanged since the last validation", variant_dir.name,
                 len(todo), len(rows) - len(todo))

    failures = tuple(gate_failure(r) for r in rows if r["gate"]["enforced"] and not r["gate"]["passed"])
    diagnosis = _diagnosis(variant_dir, manifest, [r for r in rows if "runtime" not in r])
    float_metrics = {"top1": topk_accuracy(reference, labels, 1), "top5": topk_accuracy(reference, labels, 5)} if labelled else {}
    path = write_json(variant_dir / VALIDATION, {
        "variant": manifest["variant"]["name"], "task": manifest["variant"]["task"],
        "images": int(len(pixels)), **({"requested": cfg.limit} if cfg.limit and cfg.limit > len(pixels) else {}),
        "labelled": labelled, "source": images.source, "images_sha256": images.digest,
        "float": float_metrics, "gates": asdict(cfg.gates), "artifacts": rows, "passed": not failures,
        **({"diagnosis": diagnosis} if diagnosis else {}),
    })
    return ValidationResult(path, not failures, failures)
