#!/usr/bin/env python3
"""Data-free (synthetic, ZeroQ) versus real-image int8 calibration on the reference checkpoints.

    python benchmarks/synthetic_calibration.py                 # the record (~15 min here); then benchmarks/readme.py
    python benchmarks/synthetic_calibration.py --limit 2000    # fewer test images (said in the record)

For each Fashion-MNIST reference checkpoint: the full-int8 per-channel .tflite (uint8 I/O, as `make int8`)
calibrated (a) on 200 training images and (b) on synthetic inputs at two optimisation budgets; int8 top-1 on
the held-out test images against the float model's. It also times the synthesis for V1 alpha 0.75 at 224 px
(the headline `make int8 ALPHA=0.75`, default settings; random weights: the time does not depend on their
values) and records how busy the machine was. Writes benchmarks/records/synthetic_calibration.json (benchmarks/readme.py renders its table).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "synthetic_calibration.json"
README = ROOT / "README.md"
BLOCK = "synthetic-calibration"
CHECKPOINTS = (("v1", 0.25), ("v1", 0.75), ("v2", 1.0), ("v3-small", 1.0))
TARGET_POINTS = {"v1": 0.5, "v2": 1.0, "v3-small": 1.0}  # issue 13: synthetic within this of real-image calibration
REAL_SAMPLES = 200
SETTINGS = ((32, 25), (32, 100))  # (samples, steps) of the synthetic runs: the cheap one and the default


def busy_cores() -> float:
    """CPU cores busy over one second (/proc/stat), this process included."""
    def snapshot():
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]
    total0, idle0 = snapshot()
    time.sleep(1)
    total1, idle1 = snapshot()
    return round((os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(1, total1 - total0)), 2)


def int8_top1(model, calib, images, pre) -> float:
    from mobilenet_edge.pipeline.validate import runtimes
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "int8.tflite"
        path.write_bytes(tflite_bytes(model, "int8", calib))
        probs = runtimes.predict(runtimes.load(path, 64, 2), images.pixels, pre.normalize)
    return float(np.mean(np.argmax(probs, 1) == images.labels))


def measure_checkpoint(arch: str, alpha: float, limit: int | None, cache: Path) -> dict:
    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.synthetic import SyntheticConfig
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline import build
    from mobilenet_edge.pipeline.validate import runtimes
    from mobilenet_edge.pipeline.config import Variant

    task = resolve_task("fashion-mnist")
    resolution = build.checkpoint_info(build.reference_checkpoint(task.kind, alpha, arch))["resolution"]
    variant = Variant(alpha, resolution, task.name, "reference", arch)
    model = build.build_model(variant, task.num_classes)
    pre = task.preprocessing(resolution, arch)
    images = task.labeled_images("test", resolution, limit=limit, progress=False)
    float_probs = runtimes.predict(runtimes.KerasModel(model, 64), images.pixels, pre.normalize)
    real = calibration_set(task, resolution, REAL_SAMPLES, 0, progress=False, arch=arch)
    row = {"arch": arch, "alpha": alpha, "resolution": resolution, "variant": variant.name, "images": len(images.labels),
           "float_top1": float(np.mean(np.argmax(float_probs, 1) == images.labels)),
           "real": {"samples": REAL_SAMPLES, "top1": int8_top1(model, real, images, pre)}, "synthetic": []}
    for samples, steps in SETTINGS:
        start = time.perf_counter()
        calib = calibration_set(task, resolution, samples, 0, "synthetic", progress=False, arch=arch, model=model,
                                synthetic=SyntheticConfig(steps=steps), cache_dir=cache)
        seconds = time.perf_counter() - start
        top1 = int8_top1(model, calib, images, pre)
        row["synthetic"].append({"samples": samples, "steps": steps, "seconds": round(seconds, 1), "top1": top1,
                                 "points_below_real": round(100 * (row["real"]["top1"] - top1), 2)})
    print(f"{variant.name}: float {row['float_top1']:.4f} real {row['real']['top1']:.4f} synthetic "
          + ", ".join(f"{s['steps']} steps {s['top1']:.4f} ({s['seconds']} s)" for s in row["synthetic"]), flush=True)
    return row


def time_headline(samples: int, steps: int, cache: Path) -> dict:
    """Synthesis time for V1 alpha 0.75 at 224 px (the ImageNet layout `make int8 ALPHA=0.75` builds)."""
    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.synthetic import SyntheticConfig
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.archs import get_arch

    model = get_arch("v1").keras_model(0.75, 224, 1000)
    before = busy_cores()
    start = time.perf_counter()
    calibration_set(resolve_task("imagenet"), 224, samples, 0, None, progress=False, model=model,
                    synthetic=SyntheticConfig(steps=steps), cache_dir=cache)
    return {"variant": "mobilenet_0.75_224", "samples": samples, "steps": steps,
            "seconds": round(time.perf_counter() - start, 1), "busy_cores_before": before,
            "cores": os.cpu_count()}


def readme_block(record: dict) -> str:
    """The README table, generated from the record (tests check the README holds exactly this)."""
    from mobilenet_edge.pipeline.archs import ARCHS

    names = {key: arch.short_title for key, arch in ARCHS.items()}
    head = ("| checkpoint | float top-1 | int8, 200 real images | "
            + " | ".join(f"int8, synthetic {n} x {s} steps" for n, s in record["settings"]) + " | target |")
    lines = [head, "|" + "---|" * (4 + len(record["settings"]))]
    for r in record["checkpoints"]:
        cells = [f"{names[r['arch']]} {r['alpha']:.2f} / {r['resolution']} px", f"{100 * r['float_top1']:.2f} %",
                 f"{100 * r['real']['top1']:.2f} %"]
        cells += [f"{100 * s['top1']:.2f} % ({0.0 - s['points_below_real']:+.2f} pt, {s['seconds']:.0f} s)"
                  for s in r["synthetic"]]
        cells.append(f"within {TARGET_POINTS[r['arch']]} pt")
        lines.append("| " + " | ".join(cells) + " |")
    h = record["headline"]
    lines.append("")
    lines.append(f"Test images: {record['images']:,} of the Fashion-MNIST test split. In brackets: synthetic minus "
                 "real-image int8 top-1, and the seconds of the synthesis alone, on this 2-core machine shared with "
                 "other jobs.")
    if h:
        lines.append(f"Synthesis time for {h['variant']} ({h['samples']} samples x {h['steps']} steps, the default): "
                     f"{h['seconds']:.0f} s on {h['cores']} cores ({h['busy_cores_before']} busy before it started).")
    return "\n".join(lines)



def main(argv=None) -> int:
    import json

    from mobilenet_edge.calibration.synthetic import SyntheticConfig
    from mobilenet_edge.pipeline.artifacts import write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=None, help="test images (default all 10,000)")
    p.add_argument("--only", default=None, help="measure these checkpoints only, e.g. 'v2:1.0 v3-small:1.0' "
                   "(the record keeps the others' rows)")
    p.add_argument("--skip-headline", action="store_true", help="keep the recorded 224 px timing")
    args = p.parse_args(argv)
    old = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    wanted = [(a, float(al)) for a, al in (x.split(":") for x in args.only.split())] if args.only else CHECKPOINTS
    rows = {r["variant"]: r for r in old.get("checkpoints", []) if r.get("settings") == [list(x) for x in SETTINGS]}
    headline = old.get("headline")
    with tempfile.TemporaryDirectory() as cache:  # measure the synthesis, never a cache hit
        for arch, alpha in wanted:
            row = {**measure_checkpoint(arch, alpha, args.limit, Path(cache)), "settings": [list(x) for x in SETTINGS]}
            rows[row["variant"]] = row
            # Written after each checkpoint: a long run interrupted keeps what it measured.
            write_json(RECORD, record(rows, headline))
        if not args.skip_headline:
            default = SyntheticConfig()
            headline = time_headline(32, default.steps, Path(cache))
    write_json(RECORD, record(rows, headline))
    print(f"written: {RECORD}")
    print(f"now regenerate the tables: python benchmarks/readme.py (block {BLOCK})")
    return 0


def record(rows: dict, headline: dict | None) -> dict:
    order = {f"{a}:{al}": i for i, (a, al) in enumerate(CHECKPOINTS)}
    checkpoints = sorted(rows.values(), key=lambda r: order.get(f"{r['arch']}:{r['alpha']}", 99))
    return {"schema": 1, "task": "fashion-mnist", "images": checkpoints[0]["images"], "settings": SETTINGS,
            "real_samples": REAL_SAMPLES, "checkpoints": checkpoints, "headline": headline,
            "targets_points": TARGET_POINTS}


if __name__ == "__main__":
    sys.exit(main())
