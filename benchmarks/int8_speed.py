#!/usr/bin/env python3
"""Is int8 faster than fp32? fp32 vs full-int8 p50 of the whole family at alpha 1.0, 224 px, TFLite and ONNX.

    python benchmarks/int8_speed.py                       # measure, write benchmarks/records/int8_speed.json
    python benchmarks/int8_speed.py --from-record           # print the table of the committed record
    python benchmarks/readme.py                             # then regenerate the README's and docs' tables

For every member of the architecture registry at alpha 1.0, and V1 at 0.5 (whose Mult-Adds are near V4-Conv-S's
and V3-Small's; `--archs v1:0.5` names a width), with random weights (speed does not depend on them), the
pipeline's own convert functions write fp32 and full-int8 .tflite and .onnx files; the int8 files also in the "before" form
(`--no-baseline` skips it): V3's hard-swish fused into HARD_SWISH, ONNX with int8 activations, which is
what the pipeline wrote before. Each file is audited (pipeline.convert.fastpath). Then, per runtime and thread
count (1 and 2), the files of one architecture are loaded side by side with the standalone runner's
backends (LiteRT Interpreter + XNNPACK, onnxruntime CPU) and timed in short interleaved turns, order
reversed every round, so load that comes and goes hits every file alike; p50 over all turns; the ratio is
fp32 p50 / int8 p50 (above 1: int8 is faster). Other programs' CPU use (cores' worth, /proc/stat over one
second) is sampled around every group and recorded: on a shared machine ratios are noisy.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from mobilenet_edge.benchmarks import runner  # noqa: E402
from mobilenet_edge.benchmarks.runtimes import _op_profile as op_profile  # noqa: E402
from mobilenet_edge.pipeline.archs import ARCHS as REGISTRY  # noqa: E402

ARCH_KEYS = tuple(REGISTRY)

RECORD = ROOT / "benchmarks" / "records" / "int8_speed.json"
MEMBERS = (*ARCH_KEYS, "v1:0.5")  # registry key, or key:alpha for another width than 1.0
TARGET_RATIO = 1.5
BEGIN, END = "<!-- begin:int8-speed -->", "<!-- end:int8-speed -->"
log = logging.getLogger("int8_speed")


def calibration(arch: str, resolution: int, count: int, seed: int = 0):
    """`count` smooth random images in the arch's input range (its registry entry's mean and std)."""
    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.pipeline.archs import get_arch

    a = get_arch(arch)
    images = runner.smooth_image(np.random.default_rng(seed), (count, resolution, resolution, 3))
    pixels = (images + 1) * 127.5
    samples = ((pixels - a.mean) / a.std).astype(np.float32)
    low, high = (0 - a.mean) / a.std, (255 - a.mean) / a.std
    return CalibrationSet.from_samples(samples, "smooth random images", f"seed{seed}", 0, seed, (low, high))


def parse_member(member: str) -> tuple[str, float]:
    """'v1' -> ('v1', 1.0); 'v1:0.5' -> ('v1', 0.5)."""
    arch, _, alpha = member.partition(":")
    return REGISTRY[arch].key if arch in REGISTRY else arch, float(alpha or 1.0)


def convert_family_member(arch: str, folder: Path, resolution: int = 224, samples: int = 16,
                          baseline: bool = True, alpha: float = 1.0) -> dict[str, Path]:
    """fp32 / int8 (/ baseline int8) .tflite and .onnx of one random-weight model; existing files are kept."""
    import keras

    from mobilenet_edge.pipeline.artifacts import write_bytes
    from mobilenet_edge.pipeline.build import mobilenet
    from mobilenet_edge.pipeline.config import QuantConfig
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes
    from mobilenet_edge.pipeline.convert.onnx import convert_onnx, convert_onnx_int8

    folder.mkdir(parents=True, exist_ok=True)
    files = {"tflite fp32": folder / "fp32.tflite", "tflite int8": folder / "int8.tflite",
             "onnx fp32": folder / "fp32.onnx", "onnx int8": folder / "int8.onnx"}
    if baseline:
        files |= {"tflite int8 before": folder / "int8_before.tflite", "onnx int8 before": folder / "int8_before.onnx"}
    if all(p.is_file() for p in files.values()):
        return files
    keras.utils.set_random_seed(0)
    model = mobilenet(alpha, resolution, 1000, None, arch)
    calib = calibration(arch, resolution, samples)
    for key, quant in (("tflite fp32", None), ("tflite int8", QuantConfig()),
                       ("tflite int8 before", QuantConfig(hard_swish="fused"))):
        if key in files and not files[key].is_file():
            log.info("%s: converting %s", arch, key)
            write_bytes(files[key], tflite_bytes(model, "int8" if quant else "fp32", calib, quant or QuantConfig()))
    if not files["onnx fp32"].is_file():
        convert_onnx(model, files["onnx fp32"], calib.samples[:2])
    for key, activations in (("onnx int8", "uint8"), ("onnx int8 before", "int8")):
        if key in files and not files[key].is_file():
            convert_onnx_int8(files["onnx fp32"], files[key], calib, activations=activations)
    return files


def interleaved_times(paths: dict[str, Path], threads: int, rounds: int, runs: int,
                      runtimes: dict[str, str] | None = None) -> dict[str, dict]:
    """p50, p10 and min (ms) of every file, timed in `rounds` interleaved turns of `runs` runs each (ABBA order).

    `runtimes`: key -> runner runtime name (default: litert-interpreter for .tflite, onnxruntime for .onnx).

    On a busy machine the p50 includes the time a run waits for a core; the min is the run that did not wait,
    the closest figure to the kernels' own speed, so both are kept.
    """
    backends = {}
    for key, path in paths.items():
        kind = (runtimes or {}).get(key) or ("onnxruntime" if path.suffix == ".onnx" else "litert-interpreter")
        backend = runner.load_backend(kind, str(path), threads)
        backend.feed(runner.make_inputs(backend.inputs, 0))
        runner.time_runs(backend.run, 5)  # warm-up
        backends[key] = backend
    times = {key: [] for key in backends}
    order = list(backends)
    for r in range(rounds):
        for key in (order if r % 2 == 0 else order[::-1]):
            times[key].extend(runner.time_runs(backends[key].run, runs))
    return {key: {"p50": float(np.median(t)), "p10": float(np.percentile(t, 10)), "min": float(np.min(t))}
            for key, t in times.items()}


def measure(work: Path, archs=MEMBERS, threads=(1, 2), rounds: int = 10, runs: int = 10, baseline: bool = True) -> dict:
    """Convert, audit and time every family member; the record that `RECORD` holds."""
    from mobilenet_edge.pipeline.sweep.executors import busy_cores
    from mobilenet_edge.pipeline.convert.fastpath import audit

    results, audits = [], {}
    for member in archs:
        arch, alpha = parse_member(member)
        files = convert_family_member(arch, work / member.replace(":", "_"), baseline=baseline, alpha=alpha)
        audits[member] = {key: audit(path).to_dict() for key, path in files.items()}
        openvino = also_openvino()
        if openvino:  # which layers OpenVINO's runtime model runs in int8 / float
            audits[member] |= {f"openvino {key.removeprefix('onnx ')}": openvino.audit(path)
                               for key, path in files.items() if key in ("onnx fp32", "onnx int8")}
        for fmt in ("tflite", "onnx"):
            group = {key.removeprefix(f"{fmt} "): path for key, path in files.items() if key.startswith(fmt)}
            runtimes = {}
            if fmt == "onnx" and openvino:  # the same files on OpenVINO, in the same interleaved turns
                runtimes = {f"openvino {k}": "openvino" for k in ("fp32", "int8")}
                group |= {key: group[key.removeprefix("openvino ")] for key in runtimes}
            for n in threads:
                before = busy_cores()
                stats = interleaved_times(group, n, rounds, runs, runtimes)
                after = busy_cores()
                base = {"arch": arch, "alpha": alpha, "member": member, "format": fmt, "threads": n,
                        "busy_cores_other": [before, after]}
                mine = {k: v for k, v in stats.items() if not k.startswith("openvino ")}
                results.append({**base, "runtime": "litert" if fmt == "tflite" else "onnxruntime", **_ratios(mine)})
                if runtimes:
                    ov = {k.removeprefix("openvino "): v for k, v in stats.items() if k.startswith("openvino ")}
                    results.append({**base, "runtime": "openvino", "runtime_version": openvino.version(), **_ratios(ov),
                                    "int8_vs_onnxruntime": round(mine["int8"]["p50"] / ov["int8"]["p50"], 2),
                                    "int8_vs_onnxruntime_min": round(mine["int8"]["min"] / ov["int8"]["min"], 2)})
                log.info("%s %s %d thr: %s", member, fmt, n, results[-1])
    return {"schema": 1, "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": runner.host_info(),
            "settings": {"alpha": "1.0 unless the member says key:alpha", "resolution": 224, "weights": "random (seed 0)", "rounds": rounds,
                         "runs_per_round": runs, "calibration": "16 smooth random images",
                         "tflite_runtime": "ai-edge-litert Interpreter + XNNPACK",
                         "onnx_runtime": "onnxruntime CPUExecutionProvider (default optimisation)",
                         "openvino": "OpenVINO CPU plugin, LATENCY hint, INFERENCE_PRECISION_HINT f32, the same "
                                     ".onnx files in the same turns",
                         "before": "int8 as the pipeline wrote it before: V3 HARD_SWISH fused; ONNX int8 activations"},
            "cpu_flags": op_profile.cpu_flags(), "target_ratio": TARGET_RATIO, "results": results, "fast_path": audits}


def also_openvino():
    """The OpenVINO runtime module when it is installed (the .onnx files are then timed on it too), else None."""
    from mobilenet_edge.benchmarks import runtimes

    return runtimes.module_of("openvino") if "openvino" in runtimes.also_measured() else None


def _ratios(stats: dict) -> dict:
    """p50 / p10 / min per file and fp32 / int8 ratios (and "before") of one runtime's timings."""
    p50, low = {k: v["p50"] for k, v in stats.items()}, {k: v["min"] for k, v in stats.items()}
    return {"p50_ms": {k: round(v, 3) for k, v in p50.items()},
            "p10_ms": {k: round(v["p10"], 3) for k, v in stats.items()},
            "min_ms": {k: round(v, 3) for k, v in low.items()},
            "ratio": round(p50["fp32"] / p50["int8"], 2), "ratio_min": round(low["fp32"] / low["int8"], 2),
            "ratio_before": round(p50["fp32"] / p50["int8 before"], 2) if "int8 before" in p50 else None,
            "ratio_min_before": round(low["fp32"] / low["int8 before"], 2) if "int8 before" in low else None}


def _culprits(fast_path: dict) -> str:
    slow = sorted(fast_path["slow"].items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{op} x{n}" for op, n in slow) or "—"


def _busy_note(most: float) -> str:
    # A quiet machine's 2-thread onnxruntime p50 still wanders (its spinning pool meets the runner's own
    # threads); "min" is steadier either way.
    return (", so p50s include waiting for a core and ratios are noisy" if most > 0.25 else
            " (an otherwise idle machine; 2-thread onnxruntime p50s still wander between runs)")


def readme_table(record: dict) -> str:
    """The README's Markdown table of the record (the block between the int8-speed markers)."""
    lines = ["| variant | runtime | threads | fp32 p50 ms | int8 p50 ms | fp32 / int8 p50 | fp32 / int8 min | "
             "before (p50, min) | int8: OpenVINO vs ONNX Runtime (p50, min) | int8 ops off the fast path | "
             "before: off the fast path |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    names = {"litert": "TFLite (LiteRT)", "onnxruntime": "ONNX (ONNX Runtime)", "openvino": "ONNX (OpenVINO)"}
    for r in record["results"]:
        runtime = r.get("runtime") or ("litert" if r["format"] == "tflite" else "onnxruntime")  # older records
        key = "openvino" if runtime == "openvino" else r["format"]
        member = r.get("member", r["arch"])  # records before V4 name the arch only (alpha 1.0)
        fp = record["fast_path"][member].get(f"{key} int8")
        old = record["fast_path"][member].get(f"{key} int8 before")
        before = (f"{r['ratio_before']:.2f}, {r['ratio_min_before']:.2f}" if r.get("ratio_before") is not None else "—")
        versus = (f"{r['int8_vs_onnxruntime']:.2f}, {r['int8_vs_onnxruntime_min']:.2f}"
                  if r.get("int8_vs_onnxruntime") is not None else "—")
        mark = "" if r["ratio"] >= record["target_ratio"] else " ✗"
        label = names[runtime] + (f" {r['runtime_version']}" if r.get("runtime_version") else "")
        lines.append(f"| {REGISTRY[r['arch']].short_title} {r.get('alpha', 1.0):.1f} / 224 | {label} | {r['threads']} | "
                     f"{r['p50_ms']['fp32']:.2f} | {r['p50_ms']['int8']:.2f} | {r['ratio']:.2f}{mark} | "
                     f"{r['ratio_min']:.2f} | {before} | {versus} | {_culprits(fp) if fp else '—'} | "
                     f"{_culprits(old) if old else '—'} |")
    busy = [b for r in record["results"] for b in r["busy_cores_other"] if b is not None]
    lines.append("")
    lines.append(f"Measured {record['generated_utc']} on {record['host']['cpu']} ({record['host']['cores']} cores) by "
                 f"`benchmarks/int8_speed.py`; other programs used {min(busy, default=0):.1f}-{max(busy, default=0):.1f} "
                 f"cores meanwhile{_busy_note(max(busy, default=0))}; \"min\" is the fastest "
                 f"run of each file, the closest figure to the kernels' own speed. ✗: p50 ratio below the "
                 f"{record['target_ratio']}x target. \"before\": fp32 / int8 of the files the pipeline wrote before "
                 "(fused HARD_SWISH, ONNX int8 activations). OpenVINO vs ONNX Runtime: ONNX Runtime's int8 p50 / "
                 "OpenVINO's on the same file, in the same turns (above 1: OpenVINO is faster).")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=list(MEMBERS), help="registry keys, or key:alpha")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--runs", type=int, default=10, help="runs per turn")
    p.add_argument("--work", type=Path, help="folder for the model files (default: a temporary folder)")
    p.add_argument("--no-baseline", action="store_true", help="skip the 'before' int8 files")
    p.add_argument("--record", type=Path, default=RECORD)
    p.add_argument("--from-record", action="store_true", help="do not measure; regenerate the table from --record")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_record:
        record = json.loads(args.record.read_text())
    else:
        from mobilenet_edge.pipeline.artifacts import write_json

        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            record = measure(args.work or Path(scratch), tuple(args.archs), tuple(args.threads), args.rounds,
                             args.runs, not args.no_baseline)
        record["wall_s"] = round(time.perf_counter() - started, 1)
        args.record.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.record, record)
    print(readme_table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
