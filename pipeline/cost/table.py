"""Stage 2 — cost: Mult-Adds and parameters per layer of any family member, no weights needed.

`cost_table(alpha, resolution, classes, arch)` checks its inputs once, as every other stage does
(pipeline/config.py's Variant and the arch's own alpha range), then calls the cost function that the
arch's registry entry carries (pipeline/archs/): `cost_v1` (pipeline/cost/v1.py), `cost_v2` (v2.py),
`cost_v3` (v3.py) or `cost_v4` (v4.py). Every report has `.format()` (the printed table) and `.to_dict()` (cost.json).
"""
from __future__ import annotations

import logging
from pathlib import Path

from mobilenet_edge.pipeline.archs import get_arch
from mobilenet_edge.pipeline.artifacts import write_json
from mobilenet_edge.pipeline.config import Variant
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)


def cost_table(alpha: float | str, resolution: int, classes: int = 1000, arch: str = "v1"):
    """The cost of MobileNet `arch` (a key of the registry, pipeline/archs/) at `alpha` and `resolution` with
    `classes` outputs: a CostReport for V1, an InvertedResidualCost (pipeline/cost/v2.py) otherwise.

    Raises PipelineError for an unknown ARCH, alpha outside the arch's range (or below 1/32 for V1),
    resolution < 32 or classes < 1.
    """
    # The pipeline's own checks, so the cost table accepts exactly the variants the other stages build.
    variant = Variant(alpha=alpha, resolution=resolution, weights="random", arch=arch)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise PipelineError(f"expected classes to be an integer >= 1, received classes={classes!r}")
    return get_arch(variant.arch).cost(variant.alpha, resolution, classes)


def format_table(report) -> str:
    """The printed per-layer table with totals, shares, published figures and notes."""
    return report.format()


def write_cost(report, path: str | Path) -> Path:
    """Write `report` as JSON (atomically) and return the path."""
    log.info("cost: %.1f M Mult-Adds, %.2f M params -> %s", report.total_mult_adds / 1e6,
             report.total_params / 1e6, path)
    return write_json(path, report.to_dict())
