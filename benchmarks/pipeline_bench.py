#!/usr/bin/env python3
"""Benchmarks of the pipeline itself: how long sweeps take on this machine, and what running in parallel buys.

    python benchmarks/pipeline_bench.py                     # every figure (the paper's 4 x 4 grid: ~15 min here)
    python benchmarks/pipeline_bench.py --skip-grid         # one variant and the speed-up only (a few minutes)
    python benchmarks/pipeline_bench.py --alphas "0.25 0.5" --resolutions "128 160"   # a smaller grid

Figures, each from an empty output folder (nothing to skip) unless said otherwise:
  1. one variant with every format of the sweep (alpha 1.0 at 224 px: the grid's largest)
  2. the grid (default the paper's alphas x 128-224 px, FORMATS fp32 fp16 int8 onnx, validation on 1,000
     images, benchmarks on), with the default executor; then the same sweep again, which has nothing to redo
  3. the speed-up of the default executor (one job per core, one thread each) over one worker that has every
     core, on a small grid run both ways here

TASK=fashion-mnist with its reference weights: offline, real conversions and real validation. At 128-224 px
those checkpoints (trained at 32-64 px) are near chance, which changes no work: these are timings only.
Printed as a table (and as JSON with --json); wall times include the serial benchmark phase and the report.
`--record benchmarks/records/pipeline_bench.json` also writes the figures there: the README's table of
pipeline timings is generated from that committed record (benchmarks/readme.py). How busy the machine was
is measured as the sweep measures it (`busy_cores`: cores' worth of CPU others use over one second of
/proc/stat, before and after), not by the 1-minute load average, which still counts finished workers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mobilenet_edge.pipeline.artifacts import write_json  # noqa: E402
from mobilenet_edge.pipeline.errors import PipelineError  # noqa: E402
from mobilenet_edge.pipeline.sweep.executors import busy_cores  # noqa: E402
from mobilenet_edge.pipeline.sweep import parse_values, run_sweep
from mobilenet_edge.pipeline.config import PAPER_RESOLUTIONS, SweepConfig
from mobilenet_edge.pipeline.config import Gates, ValidationConfig

TASK = "fashion-mnist"
RECORD = Path(__file__).resolve().parent / "records" / "pipeline_bench.json"
# Timing only: near-chance accuracy at 128-224 px would fail the int8 gate, which is not what is measured here.
OPEN = Gates(fp32_agreement=0.0, fp16_agreement=0.0, int8_drop_points=100.0, int8_agreement=0.0)


def timed_sweep(out: Path, alphas, resolutions, formats, limit: int, **options) -> dict:
    """One sweep into `out`; its wall time, phases and how many variants it did."""
    cfg = SweepConfig(task=TASK, alphas=tuple(alphas), resolutions=tuple(resolutions), formats=tuple(formats),
                      out=out, validation=ValidationConfig(limit=limit, gates=OPEN), **options)
    start = time.perf_counter()
    result = run_sweep(cfg, progress=False)
    seconds = time.perf_counter() - start
    failed = [f"{o.variant.name}: {o.error}" for o in result.failed]
    if failed:
        raise PipelineError("expected every variant to finish, received " + "; ".join(failed))
    return {"seconds": round(seconds, 1), "variants": len(result.outcomes), "workers": result.workers,
            "threads": result.threads, "phases": result.phases,
            "redone": sum(not o.unchanged for o in result.outcomes)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alphas", default="0.25 0.5 0.75 1.0", help="grid of figure 2 (default the paper's)")
    p.add_argument("--resolutions", default=" ".join(map(str, PAPER_RESOLUTIONS)), help="grid of figure 2")
    p.add_argument("--formats", default="fp32 fp16 int8 onnx")
    p.add_argument("--limit", type=int, default=1000, help="validation images per variant (default 1000)")
    p.add_argument("--speedup-grid", default="0.25 0.5 x 128 160", help="alphas x resolutions of figure 3")
    p.add_argument("--skip-grid", action="store_true", help="skip figure 2 (the long one)")
    p.add_argument("--skip-one", action="store_true", help="skip figure 1")
    p.add_argument("--skip-speedup", action="store_true", help="skip figure 3")
    p.add_argument("--keep", type=Path, default=None, help="keep the output folders here (default: a temporary one)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--record", type=Path, default=None,
                   help=f"also write the figures as JSON to this file (the README's: {RECORD.relative_to(RECORD.parents[2])})")
    args = p.parse_args(argv)
    try:
        alphas = parse_values(args.alphas, "ALPHAS")
        sides = parse_values(args.resolutions, "RESOLUTIONS", int)
        formats = parse_values(args.formats, "FORMATS", str)
        small_alphas, _, small_sides = args.speedup_grid.partition("x")
        small = parse_values(small_alphas, "ALPHAS"), parse_values(small_sides, "RESOLUTIONS", int)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    root = args.keep or Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    figures = {"cores": os.cpu_count(), "busy_cores_at_start": busy_cores(), "task": TASK,
               "formats": list(formats), "validation_images": args.limit}
    try:
        if not args.skip_one:
            figures["one_variant"] = {"grid": "1.0 x 224", **timed_sweep(root / "one", (1.0,), (224,), formats, args.limit)}
        if not args.skip_grid:
            grid = timed_sweep(root / "grid", alphas, sides, formats, args.limit)
            again = timed_sweep(root / "grid", alphas, sides, formats, args.limit)
            figures["grid"] = {"grid": f"{' '.join(map(str, alphas))} x {' '.join(map(str, sides))}", **grid,
                               "second_run_seconds": again["seconds"], "second_run_redone": again["redone"]}
        if not args.skip_speedup:
            one = timed_sweep(root / "serial", *small, formats, args.limit, workers=1)
            parallel = timed_sweep(root / "parallel", *small, formats, args.limit)
            figures["speedup"] = {
                "grid": args.speedup_grid, "one_worker": one, "parallel": parallel,
                "speedup_total": round(one["seconds"] / parallel["seconds"], 2),
                "speedup_convert_validate": round(one["phases"]["convert+validate"]
                                                  / parallel["phases"]["convert+validate"], 2)}
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    figures["busy_cores_at_end"] = busy_cores()
    if args.record:
        write_json(args.record, figures)
    print(json.dumps(figures, indent=2) if args.json else table(figures))
    return 0


def table(f: dict) -> str:
    return (f"pipeline benchmark: {f['task']}, formats {' '.join(f['formats'])}, validation on "
            f"{f['validation_images']} images, {f['cores']} cores; others busy {f['busy_cores_at_start']} cores at "
            f"start, {f['busy_cores_at_end']} at end\n\n" + readme_table(f))


def readme_table(f: dict) -> str:
    """The README's "How long it takes here" table, from a record `--record` wrote."""
    def phases(r, *names):
        return ", ".join(f"{k} {r['phases'][k]:.0f} s" for k in names if k in r["phases"])

    busy = max(f["busy_cores_at_start"], f["busy_cores_at_end"])
    rows = ["| what | wall time |", "|---|---|"]
    if "one_variant" in f:
        r = f["one_variant"]
        rows.append(f"| one variant, α 1.0 at 224 px, {' + '.join(f['formats'])}, validation on "
                    f"{f['validation_images']:,} images | {r['seconds']:.1f} s ({phases(r, 'convert+validate', 'benchmark')}) |")
    if "grid" in f:
        r = f["grid"]
        rows.append(f"| the grid {r['grid'].replace(' x ', ' × ')} px ({r['variants']} variants, the same formats, "
                    f"{r['workers']} workers × {r['threads']} thread) | {r['seconds']:.0f} s = {r['seconds'] / 60:.1f} min "
                    f"({phases(r, 'convert+validate', 'benchmark', 'report')}) |")
        rows.append(f"| the same sweep again ({r['second_run_redone']} variants redone) | {r['second_run_seconds']:.1f} s |")
    if "speedup" in f:
        s = f["speedup"]
        one, par = s["one_worker"], s["parallel"]
        rows.append(f"| {par['variants']} variants ({s['grid'].replace(' x ', ' × ')} px): 1 worker × {one['threads']} "
                    f"threads vs {par['workers']} workers × {par['threads']} thread | {one['seconds']:.1f} s vs "
                    f"{par['seconds']:.1f} s: ×{s['speedup_total']} overall, ×{s['speedup_convert_validate']} on "
                    "convert + validate |")
    rows.append("")
    rows.append(f"{f['cores']} cores; other processes kept up to {busy:.2f} cores busy at its start and end "
                "(`busy_cores` in the record).")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
