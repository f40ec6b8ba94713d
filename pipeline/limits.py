"""Limits before work: what an export or a validation will hold in memory, checked before it starts.

Calibration keeps N preprocessed samples (uint8 pixels, normalised to float32 one at a time as the calibrators
read them; 2 bytes per value of the RES x RES x 3 input while they are decoded and stacked) and validation keeps every held-out image (1 byte per value) plus one batch of
activations; a large RES or N used to grow toward tens of GB and end in the out-of-memory killer. Here the
estimate is compared with the memory this machine (or its cgroup) has available, and the work is refused with
one line that names the limit and how to raise it: MOBILENET_EDGE_MEMORY_GB.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

OVERRIDE = "MOBILENET_EDGE_MEMORY_GB"
CALIB_BYTES_PER_VALUE = 1 + 1  # the uint8 pixels, held while they are decoded and once stacked (float32 streams)
VALID_BYTES_PER_VALUE = 1
BASELINE = 1.5e9  # TensorFlow, the converters and the runtimes themselves
# Largest activation of any family member for one image, in floats per input pixel at alpha 1: V1 / V2 / V3
# reach 64-96 channels at half the input side (RES² / 4 positions); x2 for a layer's input and output.
ACTIVATION_FLOATS_PER_PIXEL = 96 / 4 * 2
FASHION_MNIST_TEST = 10_000
# Exports of more inference work than this say so up front (V1 1.0 at 64 px, 200 samples and 10,000 held-out images: 3.3 T).
LONG_EXPORT_MULT_ADDS = 2e12


@dataclass(frozen=True)
class Estimate:
    """Bytes a step holds at its peak, by part, and what they were computed from."""

    parts: dict  # name -> bytes
    inputs: str  # "RES=224 N=200 LIMIT=all"

    @property
    def total(self) -> float:
        return BASELINE + sum(self.parts.values())


def available_bytes() -> tuple[float, str]:
    """(bytes this process may still use, where that figure comes from)."""
    override = os.environ.get(OVERRIDE)
    if override not in (None, ""):
        try:
            value = float(override)
        except ValueError:
            raise PipelineError(f"expected {OVERRIDE} to be a number of GB, received {override!r}") from None
        return value * 1e9, f"{OVERRIDE}={override}"
    figures = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                figures.append((int(line.split()[1]) * 1024, "available memory"))
    except (OSError, ValueError, IndexError) as exc:  # no /proc (not Linux): the cgroup limits below still apply
        log.debug("no MemAvailable from /proc/meminfo: %s", exc)
    for limit_file, used_file in (("memory.max", "memory.current"),  # cgroup v2, then v1
                                  ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = Path("/sys/fs/cgroup", limit_file).read_text().strip()
            used = int(Path("/sys/fs/cgroup", used_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit != "max" and int(limit) < 2 ** 60:  # v1 writes "no limit" as a huge number
            figures.append((int(limit) - used, "the cgroup's memory limit"))
        break
    return min(figures) if figures else (float("inf"), "unknown")


def activation_bytes(resolution: int, alpha: float, batch: int) -> float:
    return batch * resolution ** 2 * ACTIVATION_FLOATS_PER_PIXEL * max(alpha, 1.0) * 4


def export_estimate(resolution: int, alpha: float, calibration: int | None, validation: int | None,
                    batch: int = 64) -> Estimate:
    """Peak bytes of calibration (N samples, None: none) and validation (images, None: none)."""
    pixel = resolution ** 2 * 3
    parts = {"model": activation_bytes(resolution, alpha, 1) * 4}  # a conversion keeps a few activations
    if calibration:
        parts["calibration"] = calibration * pixel * CALIB_BYTES_PER_VALUE
    if validation:
        parts["validation"] = validation * pixel * VALID_BYTES_PER_VALUE + activation_bytes(resolution, alpha, batch)
    inputs = f"RES={resolution}" + (f" N={calibration}" if calibration else "") + \
        (f" LIMIT={validation}" if validation else "")
    return Estimate(parts, inputs)


def check_fits(estimate: Estimate, what: str) -> None:
    """Raise PipelineError when `estimate` exceeds what the machine has; log it otherwise."""
    have, source = available_bytes()
    need = estimate.total
    biggest = max(estimate.parts, key=estimate.parts.get) if estimate.parts else "model"
    log.debug("%s: about %.1f GB needed (%s), %.1f GB available (%s)", what, need / 1e9, estimate.inputs,
              have / 1e9, source)
    if need > have:
        raise PipelineError(
            f"expected {what} to fit in memory, received {estimate.inputs}, which needs about {need / 1e9:.1f} GB "
            f"(mostly {biggest}) where {source} is {have / 1e9:.1f} GB; lower RES, N or LIMIT, or set "
            f"{OVERRIDE}=<GB> to allow more")


def held_out_count(task, limit: int | None, eval_dir: str | None = None) -> int | None:
    """How many images validation will hold (None: not known before reading a folder)."""
    if limit is not None:
        return limit
    return FASHION_MNIST_TEST if task.kind == "fashion-mnist" and not eval_dir else None


def check_before_work(variant, task, calibration: int | None, validation=None) -> None:
    """An export's checks before OUT is touched: every layer keeps a channel, and the work fits in memory.

    Args: calibration: samples the export calibrates with (None: no calibrated format); validation: its
    ValidationConfig (None: no validation step).
    """
    from mobilenet_edge.pipeline.cost import table as cost

    table = cost.cost_table(variant.alpha, variant.resolution, task.num_classes, arch=variant.arch)  # zero channels
    images = held_out_count(task, validation.limit, validation.eval_dir) if validation else None
    check_fits(export_estimate(variant.resolution, variant.alpha, calibration, images), "the export")
    inferences = (calibration or 0) * 2 + (images or 0) * 7
    work = table.total_mult_adds * inferences
    if work > LONG_EXPORT_MULT_ADDS:
        # A count, not a time: the rate differs between machines (and their ISAs) by more than 10x.
        log.info("the export runs about %d inferences of %s Mult-Adds (%.1f T in all: %d calibration samples through "
                 "the converters, %s held-out images through the float model and each file)", inferences,
                 f"{table.total_mult_adds / 1e6:.0f} M", work / 1e12, calibration or 0, images or 0)
