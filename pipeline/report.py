"""Stage 8 — report: every variant under OUT in one Markdown page, one HTML page, one JSON summary, plots.

Reads only the files the other stages leave in each variant folder (manifest.json, cost.json,
validation.json, benchmark-<target>.json; any of the last three may be missing) and the reference
checkpoint records (pipeline/checkpoints/<task>/*.json). A file that cannot be read is listed under
"Problems" in the report instead of stopping it.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline.artifacts import write_json, write_text
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
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
    ("p50 ms", "median latency of one inference (batch 1) on that target and thread count; "
               "* marks a run the device reported as throttled."),
)
DIAGNOSIS_NOTE = ("rmse/scale: RMS error of the layer's int8 output divided by its quantization step; "
                  "{noise:.2f} (= 1/√12) is pure rounding noise, more means clipping or a poorly fitting range.")
FORMAT_ORDER = {"keras": 0, "tflite": 1, "onnx": 2}
PRECISION_ORDER = {"fp32": 0, "fp16": 1, "dynamic": 2, "int8": 3}
PRECISION_LABEL = {"fp32": "fp32", "fp16": "fp16", "dynamic": "dynamic range", "int8": "int8"}


@dataclass(frozen=True)
class ReportResult:
    markdown: Path
    html: Path
    summary: Path
    plots: tuple[Path, ...]


def write_report(out_dir: Path, checkpoints: Path | None = CHECKPOINTS) -> ReportResult:
    """Write OUT/report.md, OUT/report.html, OUT/summary.json and OUT/plots/*.png over every variant.

    Args: out_dir holds <task>/<variant>/manifest.json folders; checkpoints holds <task>/*.json
    checkpoint records (None: no reference-checkpoint section).
    Returns: the paths written. Raises PipelineError when out_dir holds no variant folder.
    """
    from pipeline.report_plots import write_plots  # matplotlib only when a report is written

    out_dir = Path(out_dir)
    summary = collect(out_dir, checkpoints)
    plots = write_plots(summary, out_dir / "plots")
    summary_path = write_json(out_dir / "summary.json", _strict_json(summary))
    blocks = document(summary, plots)
    md = write_text(out_dir / "report.md", render_markdown(blocks))
    page = write_text(out_dir / "report.html", render_html(blocks))
    log.info("report: %d variant(s), %d artifact(s) -> %s", len(summary["variants"]),
             sum(not r["reference"] for r in summary["records"]), md)
    return ReportResult(md, page, summary_path, tuple(plots.values()))


# ----------------------------------------------------------------------------------------------- reading

def collect(out_dir: Path, checkpoints: Path | None = CHECKPOINTS) -> dict:
    """The summary.json document: variants, one record per artifact, latency columns, ship choices."""
    folders = sorted(p.parent for p in Path(out_dir).glob("*/*/manifest.json"))
    if not folders:
        raise PipelineError(f"expected variant folders <task>/<variant>/manifest.json under {out_dir}, received none")
    problems, variants, records, columns = [], [], [], {}
    for folder in folders:
        manifest = _read(folder / "manifest.json", problems)
        if manifest is None:
            continue
        variant, rows = _variant_records(folder, manifest, problems, columns)
        variants.append(variant)
        records.extend(rows)
    _label_columns(columns)
    for r in records:
        r["latency_p50_ms"] = {columns[k]["column"]: v["p50_ms"] for k, v in r.pop("_latency").items()}
        r["latency"] = [{**{f: columns[k][f] for f in ("column", "target", "machine", "threads")}, **v}
                        for k, v in r.pop("_latency_all")]
    variants.sort(key=lambda v: (v["task"], v["alpha"] or 0, v["resolution"] or 0, v["variant"]))
    order = {(v["task"], v["variant"]): i for i, v in enumerate(variants)}
    records.sort(key=lambda r: (order[(r["task"], r["variant"])], _kind_order(r)))
    summary = {
        "schema": 1,
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "out_dir": str(out_dir),
        "variants": variants,
        "latency_columns": [{k: v for k, v in c.items() if k != "_runtimes"} | {"runtimes": _runtimes(c)}
                            for c in sorted(columns.values(), key=_column_order)],
        "records": records,
        "checkpoints": _checkpoint_records(checkpoints, variants, problems),
        "problems": problems,
    }
    summary["ship"] = ship_choices(summary)
    return summary


def _read(path: Path, problems: list) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, received {type(data).__name__}")
        return data
    except (OSError, ValueError) as exc:
        log.warning("report: cannot read %s: %s", path, exc)
        problems.append(f"{path}: unreadable ({str(exc)[:120]})")
        return None


def _variant_records(folder: Path, manifest: dict, problems: list, columns: dict) -> tuple[dict, list]:
    info = manifest.get("variant", {})
    task, name = info.get("task") or folder.parent.name, info.get("name") or folder.name
    cost = _read(folder / "cost.json", problems) or {}
    validation = _read(folder / "validation.json", problems) or {}
    checked = {a.get("file"): a for a in validation.get("artifacts", [])}
    base = {"variant": name, "task": task, "alpha": info.get("alpha"), "resolution": info.get("resolution"),
            "mult_adds": cost.get("total_mult_adds"), "params": cost.get("total_params")}
    variant = {**base, "folder": str(folder), "keras_params": cost.get("keras_params"),
               "validated": bool(validation), "validation_passed": validation.get("passed"),
               "images": validation.get("images"), "labelled": validation.get("labelled"),
               "source": validation.get("source"), "calibration": manifest.get("calibration"),
               "diagnosis": validation.get("diagnosis"), "benchmarks": []}
    keras = folder / "model.keras"
    float_metrics = validation.get("float") or {}
    rows = [{**base, "file": "model.keras", "label": "Keras float (reference)", "format": "keras",
             "precision": "fp32", "per_channel": None, "keep_float": 0, "io_dtype": "float32",
             "bytes": keras.stat().st_size if keras.is_file() else None, "reference": True,
             **_metrics({"top1": float_metrics.get("top1"), "top5": float_metrics.get("top5")}),
             "gate": None, "gate_passed": None, "gate_enforced": False}]
    entries = [dict(a) for a in manifest.get("artifacts", [])]
    entries += [dict(a) for f, a in checked.items() if f not in {e.get("file") for e in entries}]
    for entry in entries:
        check = checked.get(entry.get("file"), {})
        gate = check.get("gate")
        keep = entry.get("keep_float") or 0
        row = {**base, "file": entry.get("file"), "format": entry.get("format"), "precision": entry.get("precision"),
               "per_channel": entry.get("per_channel", check.get("per_channel")),
               "keep_float": len(keep) if isinstance(keep, list) else int(keep), "io_dtype": _io_dtype(entry),
               "bytes": entry.get("bytes"), "reference": False, **_metrics(check.get("metrics") or {}),
               "gate": gate, "gate_passed": gate.get("passed") if gate else None,
               "gate_enforced": bool(gate) and gate.get("enforced", True)}
        row["label"] = artifact_label(row)
        rows.append(row)
    for r in rows:
        r["_latency"], r["_latency_all"] = {}, []
    by_file = {r["file"]: r for r in rows}
    for path in sorted(folder.glob("benchmark-*.json")):
        doc = _read(path, problems)
        if doc is not None:
            variant["benchmarks"].append(path.name)
            _add_latencies(doc, path, by_file, columns, name)
    return variant, rows


def _metrics(m: dict) -> dict:
    keys = ("top1", "top5", "top1_drop_points", "top1_agreement", "kl_mean", "sqnr_db", "max_abs_diff",
            "mean_abs_diff")
    return {k: m.get(k) for k in keys}


def _io_dtype(entry: dict) -> str | None:
    if entry.get("io_dtype"):
        return entry["io_dtype"]
    inputs = entry.get("inputs") or [{}]
    return inputs[0].get("dtype")


def artifact_label(row: dict) -> str:
    """What a person calls the artifact: "TFLite int8", "TFLite int8 per-tensor", "ONNX fp32", ..."""
    fmt = {"tflite": "TFLite", "onnx": "ONNX", "keras": "Keras"}.get(row["format"], str(row["format"]))
    label = f"{fmt} {PRECISION_LABEL.get(row['precision'], row['precision'])}"
    if row["precision"] == "int8" and row.get("per_channel") is False:
        label += " per-tensor"
    if row.get("keep_float"):
        label += f", {row['keep_float']} layers float"
    return label


def _kind_order(r: dict) -> tuple:
    return (FORMAT_ORDER.get(r["format"], 9), PRECISION_ORDER.get(r["precision"], 9),
            r.get("per_channel") is False, r.get("keep_float") or 0, r["file"] or "")


def _add_latencies(doc: dict, path: Path, by_file: dict, columns: dict, variant: str) -> None:
    host = doc.get("host") or {}
    target = doc.get("target") or path.stem.removeprefix("benchmark-")
    for result in doc.get("results", []):
        row = by_file.get(result.get("model"))
        p50 = (result.get("latency_ms") or {}).get("p50")
        if row is None or p50 is None:
            continue
        key = (target, host.get("machine"), host.get("cpu"), result.get("threads"))
        column = columns.setdefault(key, {
            "target": target, "machine": host.get("machine"), "threads": result.get("threads"),
            "cpu": host.get("cpu"), "cores": host.get("cores"), "os": host.get("os"),
            "profile": doc.get("profile"), "device": doc.get("device"), "variants": [], "_runtimes": {}})
        if variant not in column["variants"]:
            column["variants"].append(variant)
        column["_runtimes"].setdefault(row["format"], set()).add(
            f"{result.get('runtime')} {result.get('runtime_version') or ''}".strip()
            + (f" + {result['delegate']}" if result.get("delegate") else ""))
        thermal = result.get("thermal") or {}
        latency = {"runtime": result.get("runtime"), "p50_ms": p50, "p90_ms": result["latency_ms"].get("p90"),
                   "throttled": bool(thermal.get("throttled"))}
        row["_latency_all"].append((key, latency))
        best = row["_latency"].get(key)
        if best is None or p50 < best["p50_ms"]:  # two runtimes in one run: the table shows the faster
            row["_latency"][key] = latency


def _label_columns(columns: dict) -> None:
    """ "local x86_64 2 thr"; the CPU is added only where two hosts would otherwise share a label."""
    def base(c):
        threads = f"{c['threads']} thr" if c["threads"] else "default threads"
        return " ".join(str(p) for p in (c["target"], c["machine"], threads) if p)
    counts = {}
    for c in columns.values():
        counts[base(c)] = counts.get(base(c), 0) + 1
    for c in columns.values():
        c["column"] = base(c) + (f" ({c['cpu']})" if counts[base(c)] > 1 else "")


def _column_order(c: dict) -> tuple:
    """This machine first, then the other targets by name; fewer threads first."""
    return c["target"] != "local", str(c["target"]), str(c["machine"]), c["threads"] or 0, c["column"]


def _runtimes(column: dict) -> dict:
    return {fmt: sorted(names) for fmt, names in column["_runtimes"].items()}


def _checkpoint_records(checkpoints: Path | None, variants: list, problems: list) -> list:
    """Checkpoint records that list accuracy by resolution, for the tasks in the report."""
    paths = set()
    for v in variants:
        if checkpoints is not None:
            paths.update((Path(checkpoints) / v["task"]).glob("*.json"))
    out = []
    for path in sorted(paths):
        record = _read(path, problems)
        if record and isinstance(record.get("accuracy_by_resolution"), dict):
            by_res = {int(k): v for k, v in record["accuracy_by_resolution"].items()}
            out.append({"file": path.name, "task": record.get("task") or path.parent.name,
                        "alpha": record.get("alpha"), "resolution": record.get("resolution"),
                        "test_top1": record.get("test_top1"), "classes": len(record.get("classes") or []) or None,
                        "accuracy_by_resolution": dict(sorted(by_res.items()))})
    return sorted(out, key=lambda c: (c["task"], c["alpha"] or 0))


def ship_choices(summary: dict) -> list:
    """Per variant: the smallest artifact that passes its (enforced) gate, and the fastest passing one per target."""
    choices = []
    for v in summary["variants"]:
        rows = [r for r in summary["records"] if (r["task"], r["variant"]) == (v["task"], v["variant"])]
        passing = [r for r in rows if r["gate_passed"] and r["gate_enforced"] and r["bytes"]]
        smallest = min(passing, key=lambda r: r["bytes"], default=None)
        fastest = {}
        for c in summary["latency_columns"]:
            timed = [r for r in passing if c["column"] in r["latency_p50_ms"]]
            if timed:
                fastest[c["column"]] = min(timed, key=lambda r: r["latency_p50_ms"][c["column"]])["file"]
        failing = [r["file"] for r in rows if r["gate_passed"] is False and r["gate_enforced"]]
        choices.append({"task": v["task"], "variant": v["variant"], "smallest": smallest["file"] if smallest else None,
                        "fastest": fastest, "failing": failing})
    return choices


def _strict_json(value):
    """Infinite SQNR (identical outputs) becomes null: JSON has no Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- rendering
# The page is built once as blocks — ("h2", text), ("p", text), ("meta", text), ("status", text, bad),
# ("list", items), ("table", header, rows), ("figure", caption, path) — then written as Markdown and as HTML.
# A list item is a string or (name, text); a table row is a list of cells, {"cells", "cls", "title"} or
# {"group": text} (a variant heading inside a task's table).

def _num(x, fmt: str) -> str:
    if x is None:
        return DASH
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    text = format(x, fmt)
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def _pct(x) -> str:
    return DASH if x is None else _num(100 * x, ".2f")


def _mb(n) -> str:
    return _num(n and n / 1e6, ".3f")


def _gate_text(r: dict) -> str:
    gate = r["gate"]
    if r["reference"] or not gate:
        return "reference" if r["reference"] else DASH
    verdict = "pass" if gate.get("passed") else "FAIL"
    if not r["gate_enforced"]:
        return f"info: {verdict}"
    if verdict == "FAIL" and gate.get("rule"):
        key, op, limit = (gate["rule"].split() + ["", "", ""])[:3]
        short = {"top1_drop_points": "drop", "top1_agreement": "agreement"}.get(key, key)
        return f"FAIL: {short} {_num(gate.get('value', r.get(key)), '.3g')} {({'<=': '>', '>=': '<'}).get(op, 'vs')} {limit}"
    return verdict


def _rows_of(summary: dict, v: dict) -> list:
    return [r for r in summary["records"] if (r["task"], r["variant"]) == (v["task"], v["variant"])]


def artifact_table(summary: dict, task: str) -> tuple[list[str], list]:
    """One task's table: a group row per variant, then one row per artifact (Keras float first)."""
    columns = [c["column"] for c in summary["latency_columns"]]
    header = ["artifact", "size MB", "Mult-Adds M", "params M", "top-1 %", "top-5 %", "drop pts", "agreement %",
              "KL", "SQNR dB", "max |Δ|", "gate", *(f"p50 ms {c}" for c in columns)]
    rows = []
    for v in (v for v in summary["variants"] if v["task"] == task):
        rows.append({"group": f"{v['variant']} (α {v['alpha']}, {v['resolution']} px)"
                              + ("" if v["validation_passed"] is not False else " — a gate fails")})
        for r in _rows_of(summary, v):
            cells = [r["label"], _mb(r["bytes"]), _num(r["mult_adds"] and r["mult_adds"] / 1e6, ".2f"),
                     _num(r["params"] and r["params"] / 1e6, ".3f"), _pct(r["top1"]), _pct(r["top5"]),
                     _num(r["top1_drop_points"], ".2f"), _pct(r["top1_agreement"]), _num(r["kl_mean"], ".1e"),
                     _num(r["sqnr_db"], ".1f"), _num(r["max_abs_diff"], ".2g"), _gate_text(r)]
            for c in columns:
                p50 = r["latency_p50_ms"].get(c)
                throttled = any(x["throttled"] for x in r["latency"] if x["column"] == c)
                cells.append(_num(p50, ".3f" if p50 is None or p50 < 10 else ".1f") + ("*" if throttled else ""))
            failing = r["gate_passed"] is False and r["gate_enforced"]
            rows.append({"cells": cells, "title": r["file"], "cls": "ref" if r["reference"] else "bad" if failing else ""})
    return header, rows


def metric_lines(summary: dict, task: str) -> list[tuple[str, str]]:
    """METRICS, with the gate line naming the rules this task's validation really used (users override them)."""
    rules = {}
    for r in summary["records"]:
        if r["task"] == task and r["gate"] and r["gate_enforced"] and r["gate"].get("rule"):
            rules.setdefault(PRECISION_LABEL.get(r["precision"], r["precision"]), set()).add(_pretty_rule(r["gate"]["rule"]))
    if not rules:
        return list(METRICS)
    used = "; ".join(f"{p}: {' or '.join(sorted(x))}" for p, x in rules.items())
    return [(n, t if n != "gate" else f"the validation rule for the artifact's precision ({used}); "
                                      "\"info\" rows are shown for comparison and not enforced.") for n, t in METRICS]


def _pretty_rule(rule: str) -> str:
    """'top1_agreement >= 0.999' -> 'agreement ≥ 99.9 %'; 'top1_drop_points <= 1.0' -> 'drop ≤ 1.0 pts'."""
    key, op, limit = (rule.split() + ["", "", ""])[:3]
    op = {">=": "≥", "<=": "≤"}.get(op, op)
    try:
        if key == "top1_agreement":
            return f"agreement {op} {100 * float(limit):g} %"
        if key == "top1_drop_points":
            return f"drop {op} {float(limit):g} pts"
    except ValueError:
        pass
    return rule


def _variant_line(v: dict) -> str:
    text = f"{v['variant']}: α {v['alpha']}, {v['resolution']} px"
    if v["validated"]:
        text += (f"; validated on {v['images']} {'labelled' if v['labelled'] else 'unlabelled'} images "
                 f"({v['source']}); {'all gates pass' if v['validation_passed'] else 'a gate FAILS'}")
    else:
        text += "; not validated (no validation.json)"
    return text + ("; benchmarks: " + ", ".join(v["benchmarks"]) if v["benchmarks"] else "; not benchmarked")


def ship_lines(summary: dict, v: dict, choice: dict) -> list[str]:
    """The sentences of the "Which artifact to ship" section for one variant."""
    rows = {r["file"]: r for r in _rows_of(summary, v)}
    lines = []
    if choice["smallest"]:
        r = rows[choice["smallest"]]
        lines.append(f"Smallest that passes: {r['label']} ({r['file']}), {_mb(r['bytes'])} MB, {_accuracy(r)}.")
    else:
        lines.append("No artifact passes its gate" + ("." if v["validated"] else " (not validated)."))
    for column, file in choice["fastest"].items():
        r = rows[file]
        lines.append(f"Fastest that passes on {column}: {r['label']} ({r['file']}), "
                     f"{_num(r['latency_p50_ms'][column], '.3f')} ms p50, {_mb(r['bytes'])} MB, {_accuracy(r)}.")
    if not choice["fastest"] and choice["smallest"]:
        lines.append("No latency measured: run `make bench` (or `make bench-remote HOST=...`).")
    for file in choice["failing"]:
        lines.append(f"Do not ship {rows[file]['label']} ({file}): it fails its gate "
                     f"({_gate_text(rows[file]).removeprefix('FAIL: ')}).")
    return lines


def _accuracy(r: dict) -> str:
    parts = [f"top-1 {_pct(r['top1'])} %" if r["top1"] is not None else "",
             f"drop {_num(r['top1_drop_points'], '.2f')} pts" if r["top1_drop_points"] is not None else "",
             f"agreement {_pct(r['top1_agreement'])} %" if r["top1_agreement"] is not None else ""]
    return ", ".join(p for p in parts if p) or "no accuracy measured"


def diagnosis_blocks(summary: dict, v: dict) -> list:
    """Worst int8 layers and what keeping some in float buys, for a variant with a diagnosis."""
    d = v.get("diagnosis")
    if not d:
        return []
    layers = [[str(i + 1), _layer_name(l.get("name") or l.get("tensor") or "?"), l.get("op") or DASH,
               _num(l.get("rmse/scale"), ".3f")] for i, l in enumerate(d.get("worst_layers", [])[:10])]
    notes = [DIAGNOSIS_NOTE.format(noise=d.get("rounding_noise") or 1 / math.sqrt(12))]
    s = d.get("selective") or {}
    if s:
        parts = [f"Keeping the {s.get('keep_float')} worst layers in float ({s.get('file', '')}), against full int8:"]
        for name, key, full, show in (("top-1", "top1", "full_int8_top1", _pct), ("agreement", "top1_agreement",
                                       "full_int8_agreement", _pct), ("SQNR", "sqnr_db", "full_int8_sqnr_db", None),
                                      ("size", "bytes", "full_int8_bytes", _mb)):
            if s.get(key) is not None and s.get(full):
                a, b = s[key], s[full]
                text = f"{show(a)} % vs {show(b)} %" if show is _pct else f"{_mb(a)} MB vs {_mb(b)} MB" if show \
                    else f"{_num(a, '.1f')} dB vs {_num(b, '.1f')} dB"
                change = _num(100 * (a - b), "+.2f") + " pts" if key == "top1" else \
                    _num(100 * (a / b - 1), "+.0f") + " %" if key == "bytes" else ""
                parts.append(f"{name} {text}{f' ({change})' if change else ''},")
        rows = {r["file"]: r for r in _rows_of(summary, v)}
        kept = rows.get(s.get("file"), {}).get("latency_p50_ms", {})
        full = next((r["latency_p50_ms"] for r in rows.values() if r["format"] == "tflite" and r["precision"] == "int8"
                     and r["per_channel"] is not False and not r["keep_float"]), {})
        parts += [f"p50 {_num(kept[c], '.3f')} vs {_num(full[c], '.3f')} ms on {c}," for c in kept if c in full]
        notes.append(" ".join(parts).rstrip(",") + ".")
    return [("h2", f"int8 diagnosis: {v['variant']}"), ("table", ["#", "layer", "op", "rmse/scale"], layers),
            ("list", notes)]


def _layer_name(tensor: str) -> str:
    """'m_1/conv_pw_7_relu_1/Relu6;...' -> 'conv_pw_7' (the Keras layer the fused tensor comes from)."""
    first = tensor.split(";")[0].split("/")
    return re.sub(r"(_relu|_bn)?(_\d+)?$", "", first[1] if len(first) > 1 else first[0]) or tensor


def document(summary: dict, plots: dict) -> list[tuple]:
    """Every block of the report, in reading order."""
    failing = [f for c in summary["ship"] for f in c["failing"]]
    n, m = len(summary["variants"]), sum(not r["reference"] for r in summary["records"])
    status = (f"{n} variant{'s' * (n != 1)}, {m} artifact{'s' * (m != 1)}. "
              + (f"{len(failing)} artifact(s) fail their gate: {', '.join(failing)}." if failing
                 else "Every validated artifact passes its gate."))
    blocks = [("h1", "MobileNet V1 edge report"), ("meta", f"{summary['generated_utc']} · {summary['out_dir']}"),
              ("status", status, bool(failing)), ("h2", "Which artifact to ship")]
    variants = {(v["task"], v["variant"]): v for v in summary["variants"]}
    for choice in summary["ship"]:
        v = variants[(choice["task"], choice["variant"])]
        blocks += [("h3", f"{v['task']} / {v['variant']}"), ("list", ship_lines(summary, v, choice))]
    blocks.append(("meta", "Only artifacts whose gate is enforced count; \"info\" rows (per-tensor int8) are there "
                           "to show what per-channel weights buy."))
    for task in dict.fromkeys(v["task"] for v in summary["variants"]):
        blocks += [("h2", f"Artifacts: {task}"),
                   ("list", [_variant_line(v) for v in summary["variants"] if v["task"] == task]),
                   ("table", *artifact_table(summary, task)), ("list", metric_lines(summary, task))]
    if summary["latency_columns"]:
        header = ["column", "CPU", "cores", "OS", "profile", "runtimes", "variants"]
        rows = [[c["column"], c["cpu"] or DASH, str(c["cores"] or DASH), c["os"] or DASH, c["profile"] or DASH,
                 "; ".join(f"{fmt}: {', '.join(names)}" for fmt, names in c["runtimes"].items()),
                 ", ".join(c["variants"])] for c in summary["latency_columns"]]
        blocks += [("h2", "Benchmark targets"), ("table", header, rows)]
    if plots:
        blocks += [("h2", "Plots"), *(("figure", PLOT_CAPTIONS.get(k, k), p) for k, p in plots.items()
                                      if k != "checkpoint_resolution")]
    for v in summary["variants"]:
        blocks += diagnosis_blocks(summary, v)
    if summary["checkpoints"]:
        cps = summary["checkpoints"]
        resolutions = sorted({res for c in cps for res in c["accuracy_by_resolution"]})
        header = ["task", "α", "trained at", "test top-1 %", *(f"{res} px" for res in resolutions)]
        rows = [[c["task"], str(c["alpha"]), f"{c['resolution']} px", _pct(c["test_top1"]),
                 *(_pct(c["accuracy_by_resolution"].get(res)) for res in resolutions)] for c in cps]
        blocks += [("h2", "Reference checkpoints: float top-1 by input resolution"), ("table", header, rows),
                   ("meta", "Float top-1 (%) on the task's test split at each input side; a network trained at one "
                            "size can fall to chance at another, so convert a checkpoint at its training resolution.")]
        if "checkpoint_resolution" in plots:
            blocks.append(("figure", PLOT_CAPTIONS["checkpoint_resolution"], plots["checkpoint_resolution"]))
    if summary["problems"]:
        blocks += [("h2", "Problems"), ("list", summary["problems"])]
    return blocks


PLOT_CAPTIONS = {
    "accuracy_vs_mult_adds": "Top-1 accuracy against Mult-Adds (log scale), as the paper's Figures 4–5.",
    "accuracy_vs_latency": "Top-1 accuracy against p50 latency, one panel per benchmark target.",
    "size_per_format": "File size per format, grouped by variant.",
    "checkpoint_resolution": "Reference checkpoints: float top-1 by input resolution.",
}


def _row(row) -> dict:
    return row if isinstance(row, dict) else {"cells": row}


def render_markdown(blocks: list[tuple]) -> str:
    def cells(values):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in values) + " |"

    out = []
    for kind, *args in blocks:
        if kind in ("h1", "h2", "h3"):
            out += [f"{'#' * int(kind[1])} {args[0]}"]
        elif kind in ("p", "meta", "status"):
            out += [args[0]]
        elif kind == "list":
            out += [f"- **{i[0]}**: {i[1]}" if isinstance(i, tuple) else f"- {i}" for i in args[0]]
        elif kind == "table":
            header, rows = args
            out += [cells(header), "|" + "---|" * len(header)]
            out += [cells([f"**{r['group']}**", *[""] * (len(header) - 1)]) if "group" in r else cells(r["cells"])
                    for r in map(_row, rows)]
        elif kind == "figure":
            out += [f"![{args[0]}](plots/{args[1].name})", "", f"*{args[0]}*"]
        out.append("")
    return "\n".join(out)


NUMBER = re.compile(r"[-+]?(\d[\d.]*(e[-+]?\d+)?|∞|—)\*?( px)?")
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#222}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 4px}.meta{color:#666}ul{margin-top:4px}
.status{padding:8px 12px;border-radius:6px;background:#eef6ee;border:1px solid #b9dcb9}
.status.bad{background:#fbeeee;border-color:#e3b3b3}.wrap{overflow-x:auto}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td{padding:4px 8px;border-bottom:1px solid #e4e4e4;white-space:nowrap}
th{background:#f4f5f7;text-align:left;padding:4px 8px;vertical-align:bottom;max-width:9em;overflow-wrap:break-word}
th.n{text-align:right}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.group td{background:#e9eef6;font-weight:600}
tr.ref td{color:#555;font-style:italic}tr.bad td{background:#fdf1f1}
td.pass{color:#1a7f37;font-weight:600}td.fail{color:#c62828;font-weight:700}td.info{color:#777}
ul.defs{font-size:13px;color:#444;columns:2;column-gap:32px}ul.defs li{break-inside:avoid;margin-bottom:2px}
figure{margin:12px 0 20px}figure img{max-width:100%;border:1px solid #e4e4e4}figcaption{color:#555;font-size:13px}
"""


def render_html(blocks: list[tuple]) -> str:
    e = html.escape
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>MobileNet V1 edge report</title>"
           f"<style>{CSS}</style></head><body>"]
    for kind, *args in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(args[0])}</{kind}>")
        elif kind in ("meta", "status"):
            out.append(f"<p class='{kind}{' bad' if kind == 'status' and args[1] else ''}'>{e(args[0])}</p>")
        elif kind == "list":
            items = [f"<li><b>{e(i[0])}</b>: {e(i[1])}</li>" if isinstance(i, tuple) else f"<li>{e(i)}</li>"
                     for i in args[0]]
            out.append(f"<ul{' class=defs' if args[0] and isinstance(args[0][0], tuple) else ''}>{''.join(items)}</ul>")
        elif kind == "table":
            out.append(_html_table(*args))
        elif kind == "figure":
            data = base64.b64encode(args[1].read_bytes()).decode()
            out.append(f"<figure><img alt='{e(args[0])}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{e(args[0])}</figcaption></figure>")
    return "\n".join(out) + "\n</body></html>\n"


def _html_table(header: list[str], rows: list) -> str:
    e = html.escape
    body = []
    for row in map(_row, rows):
        if "group" in row:
            body.append(f"<tr class=group><td colspan={len(header)}>{e(row['group'])}</td></tr>")
            continue
        tds = []
        for name, cell in zip(header, row["cells"]):
            cls = ("pass" if cell == "pass" else "fail" if cell.startswith("FAIL") else "info") if name == "gate" \
                else "n" if NUMBER.fullmatch(cell) else ""
            title = f" title='{e(row['title'])}'" if row.get("title") and not tds else ""
            tds.append(f"<td class='{cls}'{title}>{e(cell)}</td>")
        body.append(f"<tr class='{row.get('cls', '')}'>{''.join(tds)}</tr>")
    first = next((r["cells"] for r in map(_row, rows) if "cells" in r), header)
    head = "".join(f"<th{' class=n' if NUMBER.fullmatch(c) else ''}>{e(h)}</th>" for h, c in zip(header, first))
    return f"<div class=wrap><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
