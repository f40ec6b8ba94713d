"""What every part of the report prints the same way: the metric notes, number formats, gate verdicts.

Shared by pipeline/report/__init__.py (the summary), render.py (Markdown and HTML), grid.py (the sweep
tables) and plots.py; it imports none of them.
"""
from __future__ import annotations

import math

from mobilenet_edge.pipeline.archs import ARCHS

DASH = "—"


# One line per metric, printed next to the artifact table (Markdown and HTML).
METRICS = (
    ("size", "file size in MB (10⁶ bytes); the Keras row is the saved model.keras."),
    ("Mult-Adds", "multiply-accumulates for one image (cost.json, as in the paper's Table 1); "
                  "quantization does not change it, it makes each one cheaper."),
    ("params", "trainable and fixed weights, in millions."),
    ("top-1 / top-5", "share of the held-out labelled images whose label is the first / among the first five "
                      "predictions."),
    ("drop", "float top-1 minus the artifact's top-1, in percentage points; negative means the artifact "
             "scored higher (noise)."),
    ("agreement", "share of images where the artifact's top-1 equals the float model's (needs no labels)."),
    ("KL", "KL(float ‖ artifact) of the class probabilities, mean over images; < 0.01 is negligible."),
    ("SQNR", "output signal-to-quantization-noise ratio in dB; > 20 dB is usually harmless for top-1, "
             "fp32 conversions sit above 100 dB."),
    ("max |Δ|", "largest absolute difference of any output probability over all images."),
    ("gate", "the validation rule for the artifact's precision (fp32: agreement ≥ 99.9 %, fp16: ≥ 99.5 %, "
             "int8/dynamic: drop ≤ 1.0 point); \"info\" rows are shown for comparison and not enforced."),
    ("p50 ms", "median latency of one inference (batch 1) on that target and thread count, ± the half-width of "
               "its 95 % bootstrap interval; * marks a run the device reported as throttled, † one during which "
               "other processes used the CPU (still so after a cool-down and a repeat)."),
)
DIAGNOSIS_NOTE = ("rmse/scale: RMS error of the layer's int8 output divided by its quantization step; "
                  "{noise:.2f} (= 1/√12) is pure rounding noise, more means clipping or a poorly fitting range.")
PRECISION_LABEL = {"fp32": "fp32", "fp16": "fp16", "dynamic": "dynamic range", "int8": "int8"}
MULT_ADDS_FRONT = "mult_adds"
PARETO_NOTE = ("Pareto front (the line): the artifacts that pass their gate and that no other passing artifact "
               "beats on both axes, i.e. higher top-1 for no more Mult-Adds (or latency). Everything below the line "
               "is dominated: pick along it. Mult-Adds compare variants (quantization does not change them); "
               "latency compares variants and formats.")
FEW = 4  # up to this many variants the report keeps one section and one table per variant


def arch_title(arch: str) -> str:
    """'v2' -> 'V2', 'v3-small' -> 'V3-Small' (the family's name without "MobileNet")."""
    return ARCHS[arch].title.removeprefix("MobileNet ") if arch in ARCHS else str(arch).upper()


def num(x, fmt: str) -> str:
    """x formatted with `fmt`; a dash for None, ∞ for infinity, never "-0.00"."""
    if x is None:
        return DASH
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    text = format(x, fmt)
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def pct(x) -> str:
    return DASH if x is None else num(100 * x, ".2f")


def mb(n) -> str:
    return num(n and n / 1e6, ".3f")


def gate_text(r: dict) -> str:
    gate = r["gate"]
    if r["reference"] or not gate:
        return "reference" if r["reference"] else DASH
    verdict = "pass" if gate.get("passed") else "FAIL"
    if not r["gate_enforced"]:
        return f"info: {verdict}"
    if verdict == "FAIL" and gate.get("rule"):
        key, op, limit = (gate["rule"].split() + ["", "", ""])[:3]
        short = {"top1_drop_points": "drop", "top1_agreement": "agreement"}.get(key, key)
        return f"FAIL: {short} {num(gate.get('value', r.get(key)), '.3g')} {({'<=': '>', '>=': '<'}).get(op, 'vs')} {limit}"
    return verdict


def fastest_runtime(r: dict, column: str) -> dict | None:
    """The latency entry (runtime, version, p50) that gave `r` its p50 in `column` (the faster runtime)."""
    timed = [x for x in r.get("latency", []) if x["column"] == column]
    return min(timed, key=lambda x: x["p50_ms"], default=None)
