"""Step 4 of the sweep: each variant's outcome, its log line, and OUT/sweep.json (grid, settings, results)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import write_json
from mobilenet_edge.pipeline.config import SweepConfig, Variant
from mobilenet_edge.pipeline.sweep.executors import BUSY, usable_cores
from mobilenet_edge.pipeline.sweep.jobs import LOG
from mobilenet_edge.pipeline.validate import VALIDATION

log = logging.getLogger(__name__)

SWEEP_RECORD = "sweep.json"
STEPS = ("convert", "validate", "benchmark")
BENCH_NOTE = ("benchmarks ran one variant at a time on this machine after every build, conversion and validation "
              "had finished, so no sweep work competed with them for the CPU")


@dataclass
class Outcome:
    """One variant's sweep: what each step did (or "unchanged"), and why it failed if it did."""

    variant: Variant
    folder: Path
    steps: dict = field(default_factory=lambda: {s: "—" for s in STEPS})
    error: str | None = None
    failed_step: str | None = None
    gate_failures: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unchanged(self) -> bool:
        return self.ok and all(s.startswith("unchanged") for s in self.steps.values() if s != "—")

    def fail(self, step: str, error: str) -> None:
        self.error, self.failed_step, self.steps[step] = error, step, "FAILED"

    @property
    def log(self) -> Path:
        return self.folder / LOG


@dataclass(frozen=True)
class SweepResult:
    outcomes: tuple[Outcome, ...]
    report: Path | None  # OUT/report.html (None: no variant has a manifest yet)
    report_written: bool
    seconds: float
    executor: str
    workers: int  # 0: nothing needed a worker
    threads: int
    phases: dict = field(default_factory=dict)  # wall seconds of plan, convert+validate, benchmark, report

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def gates_failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok and o.gate_failures]


def gate_failures(folder: Path) -> tuple[str, ...]:
    try:
        doc = json.loads((folder / VALIDATION).read_text())
    except (OSError, ValueError):
        return ()
    return tuple(r["file"] for r in doc.get("artifacts", [])
                 if r.get("gate", {}).get("enforced", True) and r.get("gate", {}).get("passed") is False)


def log_status(outcome: Outcome) -> None:
    name = outcome.variant.name
    if not outcome.ok:
        log.error("%s: FAILED at %s: %s (log: %s)", name, outcome.failed_step, outcome.error, outcome.log)
    elif outcome.unchanged:
        log.info("%s: skipped (unchanged)", name)
    else:
        log.info("%s: done%s", name, f"; gate fails: {', '.join(outcome.gate_failures)}" if outcome.gate_failures else "")


def write_record(cfg: SweepConfig, outcomes, busy: float | None) -> Path:
    """OUT/sweep.json: the grid, its settings and each variant's result; rewritten only when it changes."""
    path = cfg.out / SWEEP_RECORD
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    outcomes = list(outcomes)
    bench = dict(old.get("benchmark") or {})
    bench.update({"enabled": cfg.bench, "target": "local", "targets": list(cfg.targets), "threads": cfg.bench_threads,
                  "runs": cfg.bench_runs,
                  "serial": True, "note": BENCH_NOTE, "cores": usable_cores()})
    if busy is not None:  # measured by the last run that timed anything
        bench["busy_cores_before"], bench["inflated"] = busy, busy > BUSY
        bench.pop("load_1min_before", None)  # what older sweeps recorded instead
    record = {
        "schema": 1,
        "task": outcomes[0].variant.task if outcomes else cfg.task,
        "weights": outcomes[0].variant.weights if outcomes else cfg.weights,
        "grid": {"archs": list(cfg.archs), "alphas": sorted({o.variant.alpha for o in outcomes}),
                 "resolutions": sorted({o.variant.resolution for o in outcomes}), "formats": list(cfg.formats)},
        "validation": {"limit": cfg.validation.limit, "seed": cfg.validation.seed},
        "calibration": {"count": cfg.quant.num_samples, "seed": cfg.quant.seed, "folder": cfg.quant.calib_dir},
        "benchmark": bench,
        "variants": [{"variant": o.variant.name, "arch": o.variant.arch, "alpha": o.variant.alpha,
                      "resolution": o.variant.resolution, "folder": str(o.folder.relative_to(cfg.out)),
                      "ok": o.ok, "failed_step": o.failed_step, "error": o.error} for o in outcomes],
    }
    if record != old:
        write_json(path, record)
    return path
