"""TARGETS=mcu in a sweep: every variant that converted goes through `make mcu`'s stage (pipeline.mcu) with the
sweep's SRAM / FLASH / NPU, one after the other, after the benchmarks (TFLite Micro's reference kernels and the
arena search are CPU work that must not run beside a latency measurement). Incremental: a variant whose mcu.json
was written from the same inputs (pipeline.mcu.mcu_inputs) is "unchanged".
"""
from __future__ import annotations

import json
import logging

from mobilenet_edge.pipeline.config import McuConfig, SweepConfig
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

MCU = "mcu"  # its name in TARGETS


def mcu_config(cfg: SweepConfig, variant) -> McuConfig:
    from mobilenet_edge.pipeline.config import MCU_IMAGES

    return McuConfig(variant, cfg.mcu, cfg.out, cfg.quant.num_samples, cfg.quant.seed, cfg.quant.calib_dir,
                     images=cfg.validation.limit or MCU_IMAGES)


def run_mcu_targets(cfg: SweepConfig, outcomes: dict, bar) -> None:
    """outcome.steps["mcu"] = "fits …", "over: …" or "unchanged (…)"; a stage that fails fails its variant."""
    from mobilenet_edge.pipeline.mcu import MCU_DIR, MCU_RECORD, mcu_inputs, mcu_stage, verdict_text

    for name, outcome in outcomes.items():
        if not outcome.ok:
            continue
        mcu = mcu_config(cfg, outcome.variant)
        bar.set_postfix_str(f"mcu {name}", refresh=True)
        try:
            old = json.loads((outcome.folder / MCU_DIR / MCU_RECORD).read_text())
        except (OSError, ValueError):
            old = None
        try:
            if old is not None and old.get("inputs") == mcu_inputs(mcu):
                outcome.steps[MCU] = f"unchanged ({verdict_text(old)})"
            else:
                outcome.steps[MCU] = verdict_text(mcu_stage(mcu).record)
        except PipelineError as exc:
            log.error("%s on the microcontroller: %s", name, exc)
            outcome.fail(MCU, str(exc))
        log.info("%s: mcu %s", name, outcome.steps[MCU])
        bar.update(1)
