#!/usr/bin/env python3
"""Where does V3-Small's int8 time go? Whole-model and per-op times of its .tflite files at 224 px, one record.

    python benchmarks/v3_int8_profile.py            # measure, write benchmarks/records/v3_small_int8_profile.json
    python benchmarks/v3_int8_profile.py --from-record   # print the table of the committed record

Files (random weights, seed 0: speed does not depend on them; made by benchmarks/int8_speed.py's converter):
fp32, int8 (the pipeline's: hard-swish split into DEPTHWISE_CONV_2D + MUL so XNNPACK runs it), int8 with the
hard-swish fused (HARD_SWISH, builtin kernel: the "before"), and int8 with the stem convolution (3 input
channels) kept in float (TensorFlow's quantization debugger, int8 I/O). Whole-model p50 of every file in
interleaved turns at 1 and 2 threads (benchmarks/int8_speed.py's timing); then each file's per-op profile
(benchmarks/runtimes/_op_profile.py: every op cut out and timed alone, parts checked against the whole) at 1 thread,
summed into the parts of the network: the stem convolution, hard-swish, input conversion (QUANTIZE and V3's
Rescaling), the other convolutions, depthwise convolutions, the rest.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mobilenet_edge.benchmarks import int8_speed, runner  # noqa: E402
from mobilenet_edge.benchmarks.runtimes import _op_profile as op_profile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "v3_small_int8_profile.json"
TARGET = 1.3
log = logging.getLogger("v3_int8_profile")


def part_of(layer: dict) -> str:
    """Which part of V3 an op of the profile belongs to, from its output tensor's (Keras layer) name."""
    name, op = layer["name"], layer["op"]
    if "/activation" in name:
        return "hard-swish"
    if op in ("QUANTIZE", "DEQUANTIZE") and "conv_1" not in name or "rescaling" in name:
        return "input conversion"
    if "conv_1/" in name or name.endswith("conv_1/convolution1"):
        return "stem conv (3 input channels)"
    if "squeeze_excite" in name or op in ("MEAN",):
        return "squeeze-excite"
    return {"CONV_2D": "other convolutions", "DEPTHWISE_CONV_2D": "depthwise convolutions"}.get(op, "other")


def float_stem_int8(folder: Path, int8_file: Path) -> Path:
    """The int8 file with its stem convolution kept in float (the quantization debugger's denylist)."""
    import keras
    from ai_edge_litert import schema_py_generated as tfl

    from mobilenet_edge.pipeline.build import mobilenet
    from mobilenet_edge.pipeline.config import QuantConfig
    from mobilenet_edge.pipeline.convert.diagnose import Diagnosis, selective_int8

    path = folder / "int8_float_stem.tflite"
    if path.is_file():
        return path
    flat = tfl.ModelT.InitFromPackedBuf(int8_file.read_bytes(), 0)
    graph = flat.subgraphs[0]
    stem = next(graph.tensors[op.outputs[0]].name.decode() for op in graph.operators
                if flat.operatorCodes[op.opcodeIndex].builtinCode == tfl.BuiltinOperator.CONV_2D)
    keras.utils.set_random_seed(0)
    model = mobilenet(1.0, 224, 1000, None, "v3-small")
    calib = int8_speed.calibration("v3-small", 224, 16)
    data = selective_int8(model, calib, Diagnosis(({"tensor": stem},)), 1, QuantConfig())
    path.write_bytes(data)
    return path


def measure(work: Path, rounds: int, runs: int) -> dict:
    from mobilenet_edge.pipeline.sweep.executors import busy_cores

    made = int8_speed.convert_family_member("v3-small", work)
    files = {"fp32": made["tflite fp32"], "int8": made["tflite int8"], "int8 fused hard-swish": made["tflite int8 before"]}
    files["int8 float stem"] = float_stem_int8(work, files["int8"])
    whole = []
    for threads in (1, 2):
        before = busy_cores()
        stats = int8_speed.interleaved_times(files, threads, rounds, runs)
        whole.append({"threads": threads, "p50_ms": {k: round(v["p50"], 3) for k, v in stats.items()},
                      "min_ms": {k: round(v["min"], 3) for k, v in stats.items()},
                      "fp32_over": {k: round(stats["fp32"]["p50"] / v["p50"], 2) for k, v in stats.items()},
                      "busy_cores_other": [before, busy_cores()]})
        log.info("whole, %d thread(s): %s", threads, whole[-1])
    profiles, parts, fastest = {}, {}, {}
    for key, path in files.items():
        record = op_profile.profile(str(path), "litert", 1)
        sums, lows = defaultdict(float), defaultdict(float)
        for layer in record["layers"]:
            sums[part_of(layer)] += layer["ms"]
            lows[part_of(layer)] += layer["min_ms"]
        parts[key] = {k: round(v, 4) for k, v in sorted(sums.items(), key=lambda kv: -kv[1])}
        fastest[key] = {k: round(v, 4) for k, v in sorted(lows.items(), key=lambda kv: -kv[1])}
        profiles[key] = {k: record[k] for k in ("whole_ms", "sum_ms", "residual_ms", "whole_min_ms", "sum_min_ms",
                                                "invoke_ms", "blocks_sum_ms", "blocks_residual_ms", "by_op")}
        profiles[key]["ops"] = len(record["layers"])
        profiles[key]["top_layers"] = op_profile.top_layers(record, 8)
        log.info("%s: %s", key, parts[key])
    return {"schema": 1, "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": runner.host_info(), "cpu_flags": op_profile.cpu_flags(), "target_ratio": TARGET,
            "settings": {"arch": "v3-small", "alpha": 1.0, "resolution": 224, "weights": "random (seed 0)",
                         "rounds": rounds, "runs_per_round": runs, "profile_threads": 1,
                         "runtime": "ai-edge-litert Interpreter + XNNPACK", "profile_method": op_profile.METHODS["litert"]},
            "whole": whole, "parts_ms": parts, "parts_min_ms": fastest, "profiles": profiles}


def table(record: dict) -> str:
    """Markdown: the parts of the network per file (fastest run of each op, ms at 1 thread: the figure load does
    not skew), the sums against the whole model, then the whole-model ratios."""
    parts = record["parts_min_ms"]
    keys = list(parts)
    names = list(dict.fromkeys(p for k in keys for p in parts[k]))
    lines = ["| part of V3-Small 224 (ms, fastest run of each op, 1 thread) | " + " | ".join(keys) + " |",
             "|---" * (len(keys) + 1) + "|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{parts[k].get(name, 0):.3f}" for k in keys) + " |")
    lines.append("| **sum of the ops** (+ one invoke) | " + " | ".join(
        f"{record['profiles'][k]['sum_min_ms']:.3f}" for k in keys) + " |")
    lines.append("| whole model, fastest run (same rounds) | " + " | ".join(
        f"{record['profiles'][k]['whole_min_ms']:.3f}" for k in keys) + " |")
    lines.append("| p50: sum of the ops / whole | " + " | ".join(
        f"{record['profiles'][k]['sum_ms']:.3f} / {record['profiles'][k]['whole_ms']:.3f}" for k in keys) + " |")
    for w in record["whole"]:
        lines.append(f"| whole model alone, {w['threads']} thread(s): fp32 / file, p50 (min) | " + " | ".join(
            f"{w['fp32_over'][k]:.2f} ({w['min_ms']['fp32'] / w['min_ms'][k]:.2f})" for k in keys) + " |")
    busy = [b for w in record["whole"] for b in w["busy_cores_other"] if b is not None]
    lines += ["", f"Measured {record['generated_utc']} on {record['host']['cpu']} (flags: {' '.join(record['cpu_flags'])}) "
              f"by `benchmarks/v3_int8_profile.py`; other programs used {min(busy, default=0):.1f}-"
              f"{max(busy, default=0):.1f} cores meanwhile."]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, help="folder for the model files (default: a temporary folder)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--record", type=Path, default=RECORD)
    p.add_argument("--from-record", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_record:
        record = json.loads(args.record.read_text())
    else:
        from mobilenet_edge.pipeline.artifacts import write_json

        with tempfile.TemporaryDirectory() as scratch:
            record = measure(args.work or Path(scratch), args.rounds, args.runs)
        write_json(args.record, record)
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
