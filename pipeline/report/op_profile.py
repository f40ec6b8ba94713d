"""The report's "Where the time goes" section: the top op types and layers of every artifact profiled with
`make profile` (profile-<target>.json beside the manifest, written by targets/op_times.py)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from mobilenet_edge.pipeline.report.text import DASH

log = logging.getLogger(__name__)

NOTE = ("`make profile`: ONNX Runtime's profiler, OpenVINO's per-layer performance counts, and for LiteRT each op cut "
        "out into its own model and timed alone (its Python packages have no op profiler). parts: the sum of the "
        "ops; residual: whole - parts, what per-op timing does not see. ms at the thread count shown.")


def collect_profiles(folders: list[Path], problems: list) -> list[dict]:
    """One row per (variant, file, runtime, target) from the folders' profile-*.json; stale rows (the file's sha256
    is no longer the manifest's) are left out with a problem line."""
    rows = []
    for folder in folders:
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        current = {a.get("file"): a.get("sha256") for a in manifest.get("artifacts", [])}
        for path in sorted(folder.glob("profile-*.json")):
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                problems.append(f"{path}: unreadable ({str(exc)[:120]})")
                continue
            for r in doc.get("results", []):
                if r.get("sha256") and current.get(r["file"]) != r["sha256"]:
                    problems.append(f"{path}: {r['file']} changed since it was profiled (not shown); run make profile")
                    continue
                rows.append({"variant": folder.name, "task": folder.parent.name, "target": doc.get("target"),
                             "cpu_flags": doc.get("cpu_flags"), **{k: r.get(k) for k in (
                                 "file", "runtime", "version", "threads", "whole_ms", "sum_ms", "residual_ms",
                                 "inference_precision")},
                             "top_ops": (r.get("by_op") or [])[:3],
                             "top_layers": sorted(r.get("layers") or [], key=lambda x: -x["ms"])[:3]})
    return rows


def op_profile_blocks(summary: dict) -> list[tuple]:
    rows = summary.get("op_profiles") or []
    if not rows:
        return []
    header = ["variant", "artifact", "runtime", "thr", "whole ms", "parts ms", "top op types", "top layers"]
    cells = []
    for r in rows:
        ops = "; ".join(f"{o['op']} x{o['count']} {o['ms']:.3f}" for o in r["top_ops"]) or DASH
        layers = "; ".join(f"{l['op']} {l['name'][-40:]} {l['ms']:.3f}" for l in r["top_layers"]) or DASH
        runtime = f"{r['runtime']} {r.get('version') or ''}".strip()
        if r.get("inference_precision"):
            runtime += f" ({r['inference_precision']})"
        cells.append({"cells": [r["variant"], r["file"], runtime, str(r.get("threads") or DASH),
                                f"{r['whole_ms']:.3f}", f"{r['sum_ms']:.3f} ({r['residual_ms']:+.3f})", ops, layers],
                      "title": r["file"], "cls": ""})
    flags = next((r["cpu_flags"] for r in rows if r.get("cpu_flags")), None)
    note = NOTE + (f" CPU flags: {' '.join(flags)}." if flags else "")
    return [("h2", "Where the time goes"), ("table", header, cells), ("meta", note)]
