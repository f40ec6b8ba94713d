"""What goes into an app: only the .tflite files that passed their validation gates, each with its figures.

`make android` used to copy every .tflite of the variant, including files that had just failed validation
and the per-tensor int8 file (which exists only to show what per-channel weights buy). Here every file of
the manifest is either shipped or left out with a one-line reason, and the README says both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BENCHMARK = "benchmark-local.json"
TASK_LIBRARY_INPUTS = ("uint8", "float32")  # image_tensor_specs.cc rejects every other input type


@dataclass(frozen=True)
class Shipped:
    entry: dict  # the manifest's artifact entry
    top1: float | None  # held-out top-1 (None without labels)
    agreement: float  # top-1 agreement with the float model
    latency_ms: float | None  # p50 on this machine, if benchmarked
    latency_note: str  # "2 threads, litert-compiled, x86_64" or why there is none


@dataclass(frozen=True)
class Selection:
    shipped: tuple[Shipped, ...]
    left_out: tuple[tuple[str, str], ...]  # (file, why)

    def to_dict(self) -> dict:
        return {"shipped": [s.entry["file"] for s in self.shipped],
                "left_out": [{"file": f, "reason": r} for f, r in self.left_out]}


def select(variant_dir: Path, manifest: dict) -> Selection:
    """Split the manifest's artifacts into those that may ship and those left out (with why).

    A file ships when it is a .tflite the Task Library can load (uint8 or float input), per-channel, and the
    latest validation.json measured exactly these bytes (same sha256) and passed its gate.
    """
    validation = _json(variant_dir / "validation.json") or {}
    rows = {row.get("sha256"): row for row in validation.get("artifacts", [])}
    bench = _json(variant_dir / BENCHMARK) or {}
    shipped, left_out = [], []
    for entry in manifest.get("artifacts", []):
        why = _reason_left_out(entry, rows.get(entry["sha256"]))
        if why:
            left_out.append((entry["file"], why))
            continue
        row = rows[entry["sha256"]]
        latency, note = _latency(bench, entry)
        shipped.append(Shipped(entry, row["metrics"].get("top1"), row["metrics"]["top1_agreement"], latency, note))
    return Selection(tuple(shipped), tuple(left_out))


def _reason_left_out(entry: dict, row: dict | None) -> str | None:
    if entry.get("format") != "tflite":
        return f"{entry.get('format')} file: Android apps load .tflite"
    if entry.get("per_channel") is False:
        return "per-tensor int8, the comparison file (it shows what per-channel weights buy); never shipped"
    dtype = entry["inputs"][0]["dtype"]
    if dtype not in TASK_LIBRARY_INPUTS:
        return f"{dtype} input: the Task Library rejects it (export with INT8_IO=uint8)"
    if row is None:
        return "not validated (validation.json has no result for this file's sha256); run make validate"
    gate = row["gate"]
    if not gate["passed"]:
        key, *limit = gate["rule"].split()
        return f"failed its gate: {key} = {gate['value']:.4g}, expected {' '.join(limit)}"
    return None


def _latency(bench: dict, entry: dict) -> tuple[float | None, str]:
    """The p50 of this very file (same name and size) in benchmark-local.json, if there is one."""
    for result in bench.get("results", []):
        if result.get("model") == entry["file"] and result.get("bytes") == entry["bytes"]:
            threads = f"{result['threads']} thread{'s' * (result['threads'] != 1)}"
            return result["latency_ms"]["p50"], f"{threads}, {result['runtime']}, {bench.get('host', {}).get('machine')}"
    return None, "not benchmarked (make bench)"


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def table(selection: Selection) -> list[str]:
    """README lines: the shipped files with accuracy, size and latency, then one line per file left out."""
    lines = ["| file | precision | input | top-1 (held out) | agrees with float | size | latency p50 |",
             "|---|---|---|---|---|---|---|"]
    for s in selection.shipped:
        spec = s.entry["inputs"][0]
        top1 = f"{s.top1:.1%}" if s.top1 is not None else "no labels"
        latency = f"{s.latency_ms:.2f} ms ({s.latency_note})" if s.latency_ms is not None else s.latency_note
        lines.append(f"| `{s.entry['file']}` | {s.entry['precision']} | {spec['dtype']} "
                     f"{'x'.join(map(str, spec['shape']))} | {top1} | {s.agreement:.1%} | "
                     f"{s.entry['bytes'] / 1e6:.2f} MB | {latency} |")
    if selection.left_out:
        lines += ["", "Left out:", ""]
        lines += [f"- `{f}`: {why}" for f, why in selection.left_out]
    return lines
