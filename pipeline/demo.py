"""The main job: the offline reference task (Fashion-MNIST) end to end for every committed checkpoint
(MobileNet V1 at four widths, V2, V3-Small and V4 Conv-S / Conv-M; `build.reference_records`).

build → every format (+ per-tensor int8) → calibrate → validate on the 10,000 test images → benchmark
on this machine → report. Real labels, trained weights, no network.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline import build
from mobilenet_edge.pipeline.config import FORMATS, PAPER_ALPHAS, ExportConfig, QuantConfig, Variant
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.recipe import export_variant
from mobilenet_edge.pipeline.config import RecipeConfig
from mobilenet_edge.pipeline.config import ValidationConfig

log = logging.getLogger(__name__)

TASK = "fashion-mnist"
KEEP_FLOAT = 3  # layers the selective-quantization row keeps in float


@dataclass(frozen=True)
class DemoResult:
    report: Path
    passed: bool
    summary: tuple[str, ...]


def run_demo(out: Path, alphas=PAPER_ALPHAS, limit: int | None = None, bench: bool = True,
             archs: tuple[str, ...] | None = None) -> DemoResult:
    """Export, validate and benchmark each reference checkpoint (every ARCH, or `archs`) at its training
    resolution; write the report."""
    from mobilenet_edge.pipeline.report import write_report

    records = [r for r in build.reference_records(TASK)
               if float(r["alpha"]) in alphas and (archs is None or r["arch"] in archs)]
    if not records:
        raise PipelineError(f"expected reference checkpoints under {build.CHECKPOINTS / TASK} for alphas "
                            f"{' '.join(map(str, alphas))}, received none")
    summary, passed = [], True
    for record in records:
        cfg = RecipeConfig(
            variant=Variant(record["alpha"], record["resolution"], TASK, "reference", record["arch"]),
            export=ExportConfig(formats=FORMATS, out=Path(out)),
            quant=QuantConfig(diagnose=True, keep_float=KEEP_FLOAT),
            per_tensor=True,
            validation=ValidationConfig(limit=limit),
            bench_threads=None,
        )
        result = export_variant(cfg)
        if bench:
            from mobilenet_edge.targets.local import bench_local

            bench_local(result.variant_dir)
        passed &= result.validation.passed
        summary.append(f"{cfg.variant.name}: {len(result.artifacts)} artifacts, validation "
                       f"{'PASS' if result.validation.passed else 'FAIL: ' + '; '.join(result.validation.failures)}")
    report = write_report(Path(out))
    return DemoResult(report.markdown, passed, tuple(summary))
