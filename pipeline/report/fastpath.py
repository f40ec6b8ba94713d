"""The report's fast-path section: what each artifact runs on (pipeline.convert.fastpath, from the manifest) next to its
latency, and a flag for every artifact that is not faster than the same variant's fp32 file of its format.

People ship int8 (and fp16 / dynamic-range) files for speed; one that is slower than fp32 on a target is
worth a warning that names the op types that fell off XNNPACK / onnxruntime's integer kernels.
"""
from __future__ import annotations

from mobilenet_edge.pipeline.convert.gpu_compat import gpu_summary
from mobilenet_edge.pipeline.report.text import DASH

NOTE = ("fast ops: ops XNNPACK runs (TFLite) or integer kernels and float-model ops (ONNX, after onnxruntime's "
        "graph optimisation); off the fast path: ops left on TFLite's builtin kernels, or float ops between "
        "Dequantize/Quantize in an int8 ONNX graph; parts: XNNPACK partitions (1 = one delegated graph). "
        "Measured with this machine's runtimes: ARM builds may delegate differently (the runner reports it there). "
        "Android GPU delegate: the ops it would leave to the CPU (pipeline/convert/gpu_compat.py). Other runtimes: "
        "the same audit on the runtimes measured beside the default one (OpenVINO: layers of its runtime model by "
        "type and precision, u8/i8 = integer kernels).")


def _fp32_twin(records: list, r: dict) -> dict | None:
    return next((x for x in records if (x["task"], x["variant"], x["format"], x["precision"])
                 == (r["task"], r["variant"], r["format"], "fp32") and not x["reference"]
                 and not x.get("keep_float")), None)


def culprit_text(fast_path: dict | None) -> str:
    """"HARD_SWISH x19 on builtin kernels" / "none: every op is on the fast path" / "not audited"."""
    if not fast_path:
        return "not audited (manifest without fast_path: re-export)"
    slow = sorted(fast_path.get("slow", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    where = "on TFLite builtin kernels" if fast_path.get("runtime") == "xnnpack" else "in float between Q/DQ"
    if slow:
        return ", ".join(f"{op} x{n}" for op, n in slow) + f" {where}"
    if (fast_path.get("partitions") or 1) > 1:
        return f"{fast_path['partitions']} XNNPACK partitions"
    return "none: every op is on the fast path, the kernels themselves are not faster here"


def speed_flags(summary: dict) -> list[dict]:
    """Every (artifact, latency column) where a non-fp32 artifact is not faster than its format's fp32 file."""
    records, flags = summary["records"], []
    for r in records:
        if r["reference"] or r["precision"] == "fp32":
            continue
        twin = _fp32_twin(records, r)
        if twin is None:
            continue
        for column, p50 in r["latency_p50_ms"].items():
            base = twin["latency_p50_ms"].get(column)
            if base and p50 and p50 >= base:
                flags.append({"task": r["task"], "variant": r["variant"], "file": r["file"], "label": r["label"],
                              "column": column, "p50_ms": p50, "fp32_p50_ms": base, "speedup": base / p50,
                              "fp32_file": twin["file"], "off_fast_path": culprit_text(r.get("fast_path")),
                              "profile": _profiled(summary, r)})
    return flags


def _profiled(summary: dict, r: dict) -> str | None:
    """"CONV_2D x43 0.76 ms, ..." from `make profile` of this file and its fp32 twin, when both were profiled."""
    rows = [p for p in summary.get("op_profiles") or [] if (p["task"], p["variant"]) == (r["task"], r["variant"])]
    mine = next((p for p in rows if p["file"] == r["file"]), None)
    if mine is None:
        return None
    return f"on {mine['runtime']}: " + ", ".join(f"{o['op']} x{o['count']} {o['ms']:.3f} ms" for o in mine["top_ops"])


def flag_sentence(flag: dict) -> str:
    return (f"{flag['label']} ({flag['file']}) is not faster than fp32 on {flag['column']}: "
            f"{flag['p50_ms']:.3f} vs {flag['fp32_p50_ms']:.3f} ms p50 (x{flag['speedup']:.2f}); "
            f"off the fast path: {flag['off_fast_path']}."
            + (f" Its costliest op types (make profile): {flag['profile']}." if flag.get("profile") else
               " `make profile` shows where its time goes, op by op."))


def _ops(counts: dict) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or DASH


def other_runtimes(audits: dict | None) -> str:
    """"openvino: 30 fast (Convolution u8 28, ...), off: none" for the runtimes measured beside the default one."""
    if not audits:
        return DASH
    return "; ".join(f"{name}: {sum(a.get('fast', {}).values())} fast ({_ops(a.get('fast', {}))}), "
                     f"off: {_ops(a.get('slow', {}))}" for name, a in sorted(audits.items()))


def fast_path_table(summary: dict) -> tuple[list[str], list]:
    columns = [c["column"] for c in summary["latency_columns"]]
    header = ["variant", "artifact", "fast ops", "off the fast path", "parts", "Android GPU delegate", "other runtimes",
              *(f"× fp32 {c}" for c in columns)]
    rows = []
    for r in summary["records"]:
        fp = r.get("fast_path")
        if r["reference"] or not fp:
            continue
        twin = _fp32_twin(summary["records"], r)
        cells = [r["variant"], r["label"], str(sum(fp.get("fast", {}).values())), _ops(fp.get("slow", {})),
                 str(fp["partitions"]) if fp.get("partitions") is not None else DASH,
                 gpu_summary(r.get("gpu")) if r["format"] == "tflite" else DASH,
                 other_runtimes(r.get("fast_path_by_runtime"))]
        for c in columns:
            base, p50 = (twin or {}).get("latency_p50_ms", {}).get(c), r["latency_p50_ms"].get(c)
            cells.append(f"{base / p50:.2f}" if base and p50 and r["precision"] != "fp32" else DASH)
        slow = not fp.get("on_fast_path", True)
        rows.append({"cells": cells, "title": r["file"], "cls": "bad" if slow else ""})
    return header, rows


def fast_path_blocks(summary: dict) -> list[tuple]:
    """The report blocks: a table of every audited artifact, then one warning per slow artifact."""
    header, rows = fast_path_table(summary)
    if not rows:
        return []
    blocks = [("h2", "Fast path"), ("table", header, rows),
              ("meta", NOTE + " × fp32: the same variant's fp32 p50 divided by this artifact's (above 1 = faster).")]
    flags = summary.get("fast_path_flags") or []
    if flags:
        blocks.append(("list", [flag_sentence(f) for f in flags]))
    return blocks
