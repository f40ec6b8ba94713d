"""What a sweep covers: the grid ARCHS × ALPHAS × RESOLUTIONS in FORMATS and how to run it, checked once.

`SweepConfig` is the sweep's typed configuration; `grid` turns it into Variants (bad input: PipelineError
before any work); `default_resolutions` is the task's grid when RESOLUTIONS is not given.
"""
from __future__ import annotations

from pathlib import Path

from mobilenet_edge.calibration.tasks import Task, resolve_task
from mobilenet_edge.pipeline.config import PAPER_RESOLUTIONS, SweepConfig, Variant
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.registry import parse_targets



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
    from mobilenet_edge.pipeline import build

    records = build.reference_records(task.kind)
    chosen = [r for r in records if r.get("arch", "v1") in archs and float(r["alpha"]) in alphas] or records
    sides = sorted({int(s) for r in chosen for s in build.trained_resolutions(r)})
    return tuple(sides) or PAPER_RESOLUTIONS


def grid(cfg: SweepConfig) -> tuple[Task, list[Variant]]:
    """Every variant of the grid, checked (bad alpha, side or arch: PipelineError before any work)."""
    parse_targets(cfg.targets)
    task = resolve_task(cfg.task)
    weights = cfg.weights or task.default_weights
    if weights not in ("imagenet", "random", "reference") and not Path(weights).is_file():
        raise PipelineError(f"expected WEIGHTS to be imagenet, random, reference or an existing file, received {weights!r}")
    sides = cfg.resolutions or default_resolutions(task, cfg.archs, cfg.alphas)
    variants = [Variant(alpha=a, resolution=r, task=cfg.task, weights=weights, arch=arch)
                for arch in cfg.archs for a in cfg.alphas for r in sides]
    return task, list({v.name: v for v in variants}.values())
