#!/usr/bin/env python3
"""The README's microcontroller table: V1 at α {0.25, 0.5} × {64, 96} px on the Fashion-MNIST reference
checkpoints, through `make mcu`'s stage (pipeline.mcu) with SRAM=256K FLASH=1M NPU=ethos-u55-128.

    python benchmarks/mcu_record.py            # measure, write benchmarks/records/mcu.json
    python benchmarks/readme.py                # then regenerate the README block "mcu" from it

Each row: top-1 on TFLite Micro's kernels (1,000 held-out images), the largest output gap to LiteRT's reference
kernels in quantization steps, the smallest arena (bisection), the file's bytes, and Vela's figures for an
Ethos-U55-128 (op split, SRAM, flash, estimated time at its configuration's clock).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

RECORD = Path(__file__).resolve().parent / "records" / "mcu.json"
ALPHAS = (0.25, 0.5)
RESOLUTIONS = (64, 96)
BUDGET = ("256K", "1M", "ethos-u55-128")
IMAGES = 1000


def measure(images: int = IMAGES) -> dict:
    from mobilenet_edge.pipeline.config import McuBudget, McuConfig, Variant
    from mobilenet_edge.pipeline.mcu import mcu_stage

    budget = McuBudget.parse(*BUDGET)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mcu-record-") as out:
        for alpha in ALPHAS:
            for res in RESOLUTIONS:
                r = mcu_stage(McuConfig(Variant(alpha, res, "fashion-mnist", "reference"), budget, Path(out),
                                        images=images)).record
                npu = r["npu"]
                rows.append({"variant": r["variant"], "alpha": alpha, "resolution": res,
                             "tflm_top1": r["accuracy"]["tflm_top1"],
                             "litert_reference_top1": r["accuracy"]["vs_litert_reference"]["top1"],
                             "max_step_difference_reference": r["accuracy"]["vs_litert_reference"]["max_step_difference"],
                             "max_step_difference_default": r["accuracy"]["vs_litert"]["max_step_difference"],
                             "arena_bytes": r["arena_bytes"], "model_bytes": r["model_bytes"],
                             "npu_ops": npu["npu_ops"], "cpu_ops": npu["cpu_ops"], "npu_sram_bytes": npu["sram_bytes"],
                             "npu_flash_bytes": npu["flash_bytes"], "npu_file_bytes": npu["bytes"],
                             "npu_cycles": npu["cycles"], "npu_ms": npu["inference_ms"], "clock_hz": npu["clock_hz"],
                             "system_config": npu["system_config"], "fits": r["fits"], "short": r["short"]})
                versions = {"tflite-micro": r["tflm_version"], "ethos-u-vela": npu["version"],
                            **r["inputs"]["tools"]}
    return {"schema": 1, "task": "fashion-mnist", "weights": "reference", "images": images,
            "budget": {"sram": BUDGET[0], "flash": BUDGET[1], "npu": BUDGET[2]},
            "host": {"machine": platform.machine(), "python": platform.python_version()},
            "versions": versions, "rows": rows,
            "note": "arena: TFLite Micro's host build (64-bit pointers); NPU figures: Vela's compiler estimates"}


def readme_table(record: dict) -> str:
    kib = lambda n: f"{n / 1024:.1f}"  # noqa: E731
    b = record["budget"]
    rows = [f"| V1 α / px | top-1 on TFLite Micro ({record['images']} images) | gap to LiteRT reference kernels | "
            f"arena KiB (smallest) | flash KiB | {b['npu']}: NPU / CPU ops | NPU SRAM KiB | NPU flash KiB | "
            f"NPU ms (Vela estimate) | fits SRAM={b['sram']} FLASH={b['flash']} |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        rows.append(f"| {r['alpha']:.2f} / {r['resolution']} | {100 * r['tflm_top1']:.1f} % | "
                    f"{r['max_step_difference_reference']} step(s) | {kib(r['arena_bytes'])} | {kib(r['model_bytes'])} | "
                    f"{r['npu_ops']} / {r['cpu_ops']} | {kib(r['npu_sram_bytes'])} | {kib(r['npu_flash_bytes'])} | "
                    f"{r['npu_ms']:.3f} at {r['clock_hz'] / 1e6:.0f} MHz | {'yes' if r['fits'] else 'no'} |")
    v = record["versions"]
    rows.append("")
    rows.append(f"tflite-micro {v['tflite-micro']} (a pinned nightly), ethos-u-vela {v['ethos-u-vela']}; "
                f"{record['note']}. Written by `benchmarks/mcu_record.py` (record: `benchmarks/records/mcu.json`).")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=IMAGES)
    args = parser.parse_args(argv)
    from mobilenet_edge.pipeline.artifacts import write_json

    record = measure(args.images)
    write_json(RECORD, record)
    print(readme_table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
