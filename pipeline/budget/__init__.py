"""BUDGET: the cheapest int8 file that loses at most BUDGET top-1 points, searched cheapest first.

Trials, in order, stopping at the first that meets the budget on held-out images (never the calibration ones):
  1. per-channel int8 as `make int8` makes it;
  2. better calibration: 4x the samples; for ONNX also onnxruntime's percentile and entropy calibration;
  3. 16-bit activations with int8 weights (TFLite 16x8; ONNX QInt16 activations), only where the runtime runs
     them at least as fast as the fp32 file (measured here: otherwise float is both faster and exact);
  4. the k most sensitive layers kept in float, k = 1, 2, 3, 5, 8, for both formats (TFLite: ranked by
     TensorFlow's quantization debugger, pipeline/convert/diagnose.py; ONNX: nodes ranked by onnxruntime's
     qdq_loss_debug SQNR, kept float with their activations, pipeline/convert/diagnose_onnx.py).
With labels the budget is the top-1 drop in points (exact counts), and a trial must also keep the int8
agreement gate (a lucky gain on few images is no pass); without labels (an unlabelled EVAL folder) it is the
loss of top-1 agreement with float, in points. Every trial is a row (settings, top-1, agreement, SQNR, size,
p50). The chosen file becomes the variant's int8 file; when none meets the budget the plain int8 file stays,
the best trial (fewest points short: loss over the budget plus agreement under the gate; a tie goes to the
cheaper trial) is kept under its own name, and the caller exits 1.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.convert.tflite import Artifact
from mobilenet_edge.pipeline.validate.intervals import drop_interval_points, exact, paired_counts
from mobilenet_edge.pipeline.validate.metrics import drift_metrics

log = logging.getLogger(__name__)

KEEP_FLOAT_STEPS = (1, 2, 3, 5, 8)
MORE_SAMPLES = 4  # trial 2: this many times the calibration samples
TIMING_RUNS = 30


@dataclass(frozen=True)
class Trial:
    """One candidate file and how it did on the held-out images."""

    name: str  # file-name suffix: int8, int8_n800, int8_16x8, int8_keep3, ...
    settings: dict
    file: str
    top1: float | None
    drop_points: float | None  # top-1 drop (labels) or agreement loss (no labels), points
    drop_interval_points: tuple[float, float] | None
    agreement: float
    sqnr_db: float
    bytes: int
    p50_ms: float
    io_dtype: str
    meets: bool
    # Points short of passing, exactly: the loss over the budget plus, where the search gates agreement, the
    # agreement under the gate (0 when it meets). With no trial within budget the one with the least is kept.
    shortfall_points: Fraction

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sqnr_db"] = None if self.sqnr_db == float("inf") else round(self.sqnr_db, 3)
        d["shortfall_points"] = round(float(self.shortfall_points), 4)
        return d


@dataclass(frozen=True)
class BudgetResult:
    budget: float
    measure: str  # "top1_drop_points" | "agreement_loss_points"
    images: int
    trials: tuple[Trial, ...]
    skipped: tuple[str, ...]  # trials not run, and why
    chosen: Trial | None  # None: no trial met the budget
    kept: Trial | None  # without a chosen trial: the best one, kept under its own name
    artifacts: tuple[Artifact, ...]  # what the manifest lists: the int8 file (+ the best trial when none met)
    float_top1: float | None = None  # the float reference's top-1 on the held-out images (validation's figure)

    @property
    def met(self) -> bool:
        return self.chosen is not None

    def to_dict(self) -> dict:
        return {"budget_points": self.budget, "measure": self.measure, "images": self.images,
                "float_top1": self.float_top1, "met": self.met,
                "chosen": self.chosen.name if self.chosen else None, "kept": self.kept.file if self.kept else None,
                "trials": [t.to_dict() for t in self.trials], "skipped": list(self.skipped)}

    def summary(self) -> str:
        return summary_line(self.to_dict())


def summary_line(record: dict) -> str:
    """One line from a budget record (BudgetResult.to_dict): what was tried and what came of it."""
    tried = ", ".join(f"{t['name']} {t['drop_points']:+.2f}" for t in record["trials"])
    what = "top-1 drop" if record["measure"] == "top1_drop_points" else "agreement loss"
    where = f"{what} on {record['images']} held-out images"
    if record["met"]:
        chosen = next(t for t in record["trials"] if t["name"] == record["chosen"])
        io_note = "" if chosen["io_dtype"] == record["trials"][0]["io_dtype"] else \
            f"; its I/O is {chosen['io_dtype']}, not {record['trials'][0]['io_dtype']}: the converter offers no " \
            f"{record['trials'][0]['io_dtype']} I/O in that mode (Android's Task Library needs uint8)"
        return f"BUDGET={record['budget_points']:g} pt met by {record['chosen']} ({where}; tried {tried}){io_note}"
    skipped = f"; skipped {'; '.join(record['skipped'])}" if record["skipped"] else ""
    return f"no int8 file within BUDGET={record['budget_points']:g} pt of {where}; tried {tried}{skipped}; " \
           f"best kept as {record['kept']}"


def trial_rows(record: dict) -> list[tuple[str, ...]]:
    """The trials as table rows (header first): settings, top-1, loss, agreement, SQNR, size, p50, I/O."""
    rows = [("trial", "settings", "top-1", "loss pt (95 %)", "agree", "SQNR dB", "MB", "p50 ms", "I/O", "")]
    for t in record["trials"]:
        interval = f" ({t['drop_interval_points'][0]:+.2f}..{t['drop_interval_points'][1]:+.2f})" \
            if t.get("drop_interval_points") else ""
        rows.append((t["name"], " ".join(f"{k}={v}" for k, v in t["settings"].items()),
                     "—" if t["top1"] is None else f"{100 * t['top1']:.2f}%", f"{t['drop_points']:+.2f}{interval}",
                     f"{100 * t['agreement']:.2f}%", "inf" if t["sqnr_db"] is None else f"{t['sqnr_db']:.1f}",
                     f"{t['bytes'] / 1e6:.2f}", f"{t['p50_ms']:.2f}", t["io_dtype"],
                     "chosen" if t["name"] == record["chosen"] else "meets" if t["meets"] else ""))
    return rows


@dataclass(frozen=True)
class HeldOut:
    """The held-out images and the float model's answers on them, computed once per search."""

    pixels: np.ndarray
    labels: np.ndarray | None
    normalize: object
    reference: np.ndarray
    # With labels a trial must also keep the int8 agreement gate: a lucky top-1 gain on few images is no pass.
    min_agreement: float = 0.0

    @property
    def float_top1(self) -> float | None:
        from mobilenet_edge.pipeline.validate.metrics import topk_accuracy

        return None if self.labels is None else topk_accuracy(self.reference, self.labels, 1)


def held_out(variant_dir: Path, task, validation) -> HeldOut:
    """Validation's images and validation's float reference (the folder's model.keras and its manifest's
    preprocessing), so a budget the search calls met is the drop `validate` then measures."""
    from mobilenet_edge.calibration.preprocessing import Preprocessing
    from mobilenet_edge.pipeline.manifest import read_manifest
    from mobilenet_edge.pipeline.validate import float_reference, held_out_images

    manifest = read_manifest(variant_dir)
    images = held_out_images(task, manifest["variant"]["resolution"], validation)
    normalize = Preprocessing.from_dict(manifest["preprocessing"]).normalize
    reference = float_reference(variant_dir, images.pixels, normalize, validation.batch)
    agreement = validation.gates.int8_agreement if images.labels is not None else 0.0
    return HeldOut(images.pixels, images.labels, normalize, reference, agreement)


def loss_points(counts) -> Fraction:
    """The budgeted quantity, exactly: top-1 drop with labels, else agreement loss (points)."""
    if counts.float_only is not None:
        return Fraction(100 * (counts.float_only - counts.artifact_only), counts.n)
    return Fraction(100 * (counts.n - counts.agree), counts.n)


def shortfall_points(loss: Fraction, agreement: Fraction, budget: float, min_agreement: float) -> Fraction:
    """Points short of passing: `loss` over `budget` plus `agreement` (a fraction) under `min_agreement`."""
    zero = Fraction(0)
    return max(zero, loss - exact(budget)) + max(zero, 100 * (exact(min_agreement) - agreement))


def best_short(done: list[Trial]) -> int:
    """The index of the trial fewest points short of the budget; a tie goes to the cheaper (earlier) one."""
    return min(range(len(done)), key=lambda i: (done[i].shortfall_points, i))


def p50_ms(path: Path, threads: int = 2, runs: int = TIMING_RUNS) -> float:
    """Median latency of one inference on this machine (a zero input; warm-up excluded)."""
    from mobilenet_edge.pipeline.validate import runtimes

    m = runtimes.load(path, 1, threads)
    shape = (1, *m.input_shape)
    x = np.zeros(shape, np.uint8)
    m(x, lambda p: p.astype(np.float32))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        m(x, lambda p: p.astype(np.float32))
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def measure(name: str, settings: dict, artifact: Artifact, data: HeldOut, budget: float, threads: int) -> Trial:
    from mobilenet_edge.pipeline.validate import runtimes

    probs = runtimes.predict(runtimes.load(artifact.path, 64, threads), data.pixels, data.normalize)
    metrics = drift_metrics(data.reference, probs, data.labels)
    counts = paired_counts(data.reference, probs, data.labels)
    loss = loss_points(counts)
    interval = tuple(round(v, 4) for v in drop_interval_points(counts)) if data.labels is not None else None
    agreement = Fraction(counts.agree, counts.n)
    short = shortfall_points(loss, agreement, budget, data.min_agreement)
    trial = Trial(name, settings, artifact.path.name, metrics.get("top1"), float(loss), interval,
                  metrics["top1_agreement"], metrics["sqnr_db"], artifact.path.stat().st_size,
                  round(p50_ms(artifact.path, threads), 3), artifact.inputs[0]["dtype"],
                  loss <= exact(budget) and agreement >= exact(data.min_agreement), short)
    log.info("budget trial %-12s loss %+.2f pt, agreement %.2f %%, %s", name, float(loss), 100 * trial.agreement,
             "meets the budget" if trial.meets else "over budget")
    return trial


def search(trials, data: HeldOut, budget: float, threads: int = 2, skipped: list | None = None):
    """Run `trials` (an iterable of (name, settings, make) where make() -> Artifact | str) until one meets.

    `make` returns a reason string instead of an artifact when a trial cannot run here (it is then skipped).
    Returns (measured trials, their artifacts, the chosen index or None).
    """
    done, made = [], []
    skipped = skipped if skipped is not None else []
    for name, settings, make in trials:
        artifact = make()
        if isinstance(artifact, str):
            skipped.append(f"{name}: {artifact}")
            log.info("budget trial %s skipped: %s", name, artifact)
            continue
        made.append(artifact)
        done.append(measure(name, settings, artifact, data, budget, threads))
        if done[-1].meets:
            return done, made, len(done) - 1
    return done, made, None


def finish(done: list[Trial], made: list[Artifact], chosen: int | None, final: Path, promote, budget: float,
           measure_name: str, images: int, skipped: list[str], float_top1: float | None = None) -> BudgetResult:
    """Make the chosen file the variant's int8 file (or keep the best trial beside it) and remove the rest.

    `promote(index) -> Artifact` rewrites trial `index` under `final` (the variant's int8 file name). With no
    chosen trial the one fewest points short of the budget (`best_short`) is kept beside the plain int8 file.
    Trials made in a scratch folder (`trial_folder`) are moved into `final`'s folder only here, once decided.
    """
    if chosen is not None:
        # The plain int8 trial already has the int8 file's name: it moves in as it is.
        artifact = move_into(made[chosen], final.parent) if made[chosen].path.name == final.name else promote(chosen)
        kept, listed = None, [artifact]
    else:
        best = best_short(done)
        kept = done[best]
        listed = [move_into(made[0], final.parent)] + ([move_into(made[best], final.parent)] if best else [])
    keep = {a.path for a in listed}
    for a in made:
        if a.path not in keep:
            a.path.unlink(missing_ok=True)  # a trial that lost is not an artifact
    record = BudgetResult(budget, measure_name, images, tuple(done), tuple(skipped),
                          done[chosen] if chosen is not None else None, kept, (), float_top1)
    if kept is not None:  # the sweep has no exit code per variant: its log and warnings carry the line
        log.warning("%s", record.summary())
    summary = record.to_dict()
    first = Artifact(**{**listed[0].__dict__, "extra": tuple(listed[0].extra) + (("budget", summary),)})
    return BudgetResult(**{**record.__dict__, "artifacts": (first, *listed[1:])})


def move_into(artifact: Artifact, folder: Path) -> Artifact:
    """`artifact` moved (an atomic rename, same file system) into `folder` under its own name."""
    if artifact.path.parent == folder:
        return artifact
    target = folder / artifact.path.name
    os.replace(artifact.path, target)
    return Artifact(**{**artifact.__dict__, "path": target})


@contextlib.contextmanager
def trial_folder(folder: Path):
    """A scratch folder inside the variant folder for the trials' files, removed on the way out (Ctrl-C too):
    until the search decides, no file under an artifact's name exists that the manifest does not list."""
    scratch = Path(folder) / f".budget-{secrets.token_hex(4)}"
    scratch.mkdir()
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
