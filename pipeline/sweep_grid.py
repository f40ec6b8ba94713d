"""What a sweep covers: the grid ARCHS × ALPHAS × RESOLUTIONS in FORMATS and how to run it, checked once.

`SweepConfig` is the sweep's typed configuration; `grid` turns it into Variants (bad input: PipelineError
before any work); `default_resolutions` is the task's grid when RESOLUTIONS is not given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from calibration.tasks import Task, resolve_task
from pipeline.config import FORMATS, QuantConfig, Variant
from pipeline.errors import PipelineError
from pipeline.executors import EXECUTORS
from pipeline.validate import ValidationConfig

PAPER_RESOLUTIONS = (128, 160, 192, 224)
DEFAULT_FORMATS = ("fp32", "fp16", "int8", "onnx")


@dataclass(frozen=True)
class SweepConfig:
    """A grid and how to run it. `resolutions` None: the task's grid (see `default_resolutions`)."""

    task: str = "fashion-mnist"
    archs: tuple[str, ...] = ("v1",)
    alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    resolutions: tuple[int, ...] | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    weights: str | None = None  # None: the task's default (reference | imagenet | random)
    out: Path = Path("artifacts")
    quant: QuantConfig = field(default_factory=QuantConfig)
    opset: int = 17
    validation: ValidationConfig = field(default_factory=lambda: ValidationConfig(limit=1000))
    bench: bool = True
    bench_threads: int | tuple[int, ...] | None = None  # None: the runner's default, every core; a tuple: each
    bench_runs: int = 100
    executor: str = "process"
    workers: int | None = None  # None: one per core, at most one per job
    threads: int | None = None  # per worker; None: cores // workers (1 for a grid: measured, README "Sweeps")
    ray_address: str | None = None
    ray_resources: dict | None = None  # Ray resources each job asks for, e.g. {"gpu-node": 1}
    targets: tuple[str, ...] = ("local",)  # where to benchmark: local, a profile with a host, a host (sweep_targets)

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise PipelineError(f"expected FORMATS among {' '.join(FORMATS)}, received {' '.join(bad) or 'none'}")
        if self.executor not in EXECUTORS:
            raise PipelineError(f"expected EXECUTOR to be one of {', '.join(EXECUTORS)}, received EXECUTOR={self.executor!r}")
        from targets.plan import check_threads

        check_threads(self.bench_threads)
        from targets.named import parse_targets

        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise PipelineError("expected TARGETS to name at least one target (local, a profile, a host), received none")
        parse_targets(self.targets)
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise PipelineError(f"expected {name.upper()} >= 1, received {name.upper()}={value!r}")
        if not isinstance(self.bench_runs, int) or self.bench_runs < 1:
            raise PipelineError(f"expected RUNS >= 1, received RUNS={self.bench_runs!r}")
        for name in ("archs", "alphas"):
            if not getattr(self, name):
                raise PipelineError(f"expected {name.upper()} to list at least one value, received none")
        if self.resolutions is not None and not self.resolutions:
            raise PipelineError("expected RESOLUTIONS to list at least one value, received none")


def parse_values(text: str, what: str, kind=float) -> tuple:
    """'0.25 0.5' or '0.25,0.5' -> (0.25, 0.5), duplicates dropped; PipelineError naming `what` otherwise."""
    values = str(text).replace(",", " ").split()
    if not values:
        raise PipelineError(f"expected {what} to list at least one value, received {what}={text!r}")
    try:
        return tuple(dict.fromkeys(kind(v) for v in values))
    except ValueError as exc:
        noun = "numbers" if kind is float else "whole numbers" if kind is int else "values"
        raise PipelineError(f"expected {what} to be {noun} separated by spaces, received {what}={text!r}") from exc


def default_resolutions(task: Task, archs, alphas) -> tuple[int, ...]:
    """The paper's 128-224 grid; for Fashion-MNIST the sides its reference checkpoints were trained at.

    A network trained on 64 px garments is at chance at 128-224 px (the report's checkpoint table shows it),
    so the reference task's grid is what its checkpoints know (their records' "resolutions").
    """
    if task.kind != "fashion-mnist":
        return PAPER_RESOLUTIONS
    from pipeline import build

    records = build.reference_records(task.kind)
    chosen = [r for r in records if r.get("arch", "v1") in archs and float(r["alpha"]) in alphas] or records
    sides = sorted({int(s) for r in chosen for s in build.trained_resolutions(r)})
    return tuple(sides) or PAPER_RESOLUTIONS


def grid(cfg: SweepConfig) -> tuple[Task, list[Variant]]:
    """Every variant of the grid, checked (bad alpha, side or arch: PipelineError before any work)."""
    task = resolve_task(cfg.task)
    weights = cfg.weights or task.default_weights
    if weights not in ("imagenet", "random", "reference") and not Path(weights).is_file():
        raise PipelineError(f"expected WEIGHTS to be imagenet, random, reference or an existing file, received {weights!r}")
    sides = cfg.resolutions or default_resolutions(task, cfg.archs, cfg.alphas)
    variants = [Variant(alpha=a, resolution=r, task=cfg.task, weights=weights, arch=arch)
                for arch in cfg.archs for a in cfg.alphas for r in sides]
    return task, list({v.name: v for v in variants}.values())
