"""Stage 8 (rendering) — the report page, built once as blocks, written as Markdown and as HTML.

`pipeline.report.collect` gathers the figures; this module only lays them out for a person.
"""
from __future__ import annotations

import base64
import html
import math
import re

from mobilenet_edge.pipeline.report.mcu import mcu_blocks
from mobilenet_edge.pipeline.report.text import (DASH, DIAGNOSIS_NOTE, FEW, METRICS, PRECISION_LABEL, fastest_runtime,
                                                 gate_text, mb, num, pct)
from mobilenet_edge.pipeline.report.fastpath import fast_path_blocks, flag_sentence
from mobilenet_edge.pipeline.report.op_profile import op_profile_blocks
from mobilenet_edge.pipeline.report.device import device_blocks, device_cell
from mobilenet_edge.pipeline.report.threads import scaling_blocks
from mobilenet_edge.pipeline.report.grid import SORT_CSS, SORT_JS, flat_table, pareto_blocks, ship_table, sweep_blocks

# The page is built once as blocks — ("h2", text), ("p", text), ("meta", text), ("status", text, bad),
# ("list", items), ("table", header, rows), ("sortable", header, rows), ("figure", caption, path) — then
# written as Markdown and as HTML (a "sortable" table sorts by the column whose header is clicked).
# A list item is a string or (name, text); a table row is a list of cells, {"cells", "cls", "title"} or
# {"group": text} (a variant heading inside a task's table).

def _ci_marks(r: dict, column: str, p50) -> str:
    """' ±1.2%' (the p50's 95 % interval) and '†' (other processes used the CPU) for the entry shown."""
    shown = next((x for x in r["latency"] if x["column"] == column and x["p50_ms"] == p50), None) or {}
    width = shown.get("ci_half_width")
    return (f" ±{100 * width:.1f}%" if width is not None else "") + ("†" if shown.get("disturbed") else "")


def _rows_of(summary: dict, v: dict) -> list:
    return [r for r in summary["records"] if (r["task"], r["variant"]) == (v["task"], v["variant"])]


def artifact_table(summary: dict, task: str) -> tuple[list[str], list]:
    """One task's table: a group row per variant, then one row per artifact (Keras float first)."""
    columns = [c["column"] for c in summary["latency_columns"]]
    header = ["artifact", "size MB", "Mult-Adds M", "params M", "top-1 %", "top-5 %", "drop pts", "agreement %",
              "KL", "SQNR dB", "max |Δ|", "gate", *(f"p50 ms {c}" for c in columns),
              *(f"device top-1 % {t}" for t in summary.get("device_targets", []))]
    rows = []
    for v in (v for v in summary["variants"] if v["task"] == task):
        rows.append({"group": f"{v['variant']} ({v['label']})"
                              + ("" if v["validation_passed"] is not False else " — a gate fails")})
        for r in _rows_of(summary, v):
            cells = [r["label"], mb(r["bytes"]), num(r["mult_adds"] and r["mult_adds"] / 1e6, ".2f"),
                     num(r["params"] and r["params"] / 1e6, ".3f"), pct(r["top1"]), pct(r["top5"]),
                     num(r["top1_drop_points"], ".2f"), pct(r["top1_agreement"]), num(r["kl_mean"], ".1e"),
                     num(r["sqnr_db"], ".1f"), num(r["max_abs_diff"], ".2g"), gate_text(r)]
            for c in columns:
                p50 = r["latency_p50_ms"].get(c)
                throttled = any(x["throttled"] for x in r["latency"] if x["column"] == c)
                cells.append(num(p50, ".3f" if p50 is None or p50 < 10 else ".1f") + ("*" if throttled else "")
                             + _ci_marks(r, c, p50))
            cells += [device_cell(r, t) for t in summary.get("device_targets", [])]
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
    text = f"{v['variant']}: {v['label']}"
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
        lines.append(f"Smallest that passes: {r['label']} ({r['file']}), {mb(r['bytes'])} MB, {_accuracy(r)}.")
    else:
        lines.append("No artifact passes its gate" + ("." if v["validated"] else " (not validated)."))
    for column, file in choice["fastest"].items():
        r = rows[file]
        best = fastest_runtime(r, column) or {}
        runtime = f" on {best['runtime']} {best.get('runtime_version') or ''}".rstrip() if best.get("runtime") else ""
        own = (r.get("validated_on") or {}).get(best.get("runtime"))  # accuracy measured on that runtime
        accuracy = (f"top-1 {pct(own['top1'])} %, agreement {pct(own['top1_agreement'])} % (validated on {best['runtime']})"
                    if own and own.get("top1") is not None else _accuracy(r))
        lines.append(f"Fastest that passes on {column}: {r['label']} ({r['file']}){runtime}, "
                     f"{num(r['latency_p50_ms'][column], '.3f')} ms p50, {mb(r['bytes'])} MB, {accuracy}.")
    if not choice["fastest"] and choice["smallest"]:
        lines.append("No latency measured: run `make bench` (or `make bench-remote HOST=...`).")
    lines += [flag_sentence(f) for f in summary.get("fast_path_flags") or []
              if (f["task"], f["variant"]) == (v["task"], v["variant"])]
    for file in choice["failing"]:
        lines.append(f"Do not ship {rows[file]['label']} ({file}): it fails its gate "
                     f"({gate_text(rows[file]).removeprefix('FAIL: ')}).")
    return lines


def _accuracy(r: dict) -> str:
    parts = [f"top-1 {pct(r['top1'])} %" if r["top1"] is not None else "",
             f"drop {num(r['top1_drop_points'], '.2f')} pts" if r["top1_drop_points"] is not None else "",
             f"agreement {pct(r['top1_agreement'])} %" if r["top1_agreement"] is not None else ""]
    return ", ".join(p for p in parts if p) or "no accuracy measured"


def diagnosis_blocks(summary: dict, v: dict) -> list:
    """Worst int8 layers and what keeping some in float buys, for a variant with a diagnosis."""
    d = v.get("diagnosis")
    if not d:
        return []
    layers = [[str(i + 1), _layer_name(l.get("name") or l.get("tensor") or "?"), l.get("op") or DASH,
               num(l.get("rmse/scale"), ".3f")] for i, l in enumerate(d.get("worst_layers", [])[:10])]
    notes = [DIAGNOSIS_NOTE.format(noise=d.get("rounding_noise") or 1 / math.sqrt(12))]
    s = d.get("selective") or {}
    if s:
        parts = [f"Keeping the {s.get('keep_float')} worst layers in float ({s.get('file', '')}), against full int8:"]
        for name, key, full, show in (("top-1", "top1", "full_int8_top1", pct), ("agreement", "top1_agreement",
                                       "full_int8_agreement", pct), ("SQNR", "sqnr_db", "full_int8_sqnr_db", None),
                                      ("size", "bytes", "full_int8_bytes", mb)):
            if s.get(key) is not None and s.get(full):
                a, b = s[key], s[full]
                text = f"{show(a)} % vs {show(b)} %" if show is pct else f"{mb(a)} MB vs {mb(b)} MB" if show \
                    else f"{num(a, '.1f')} dB vs {num(b, '.1f')} dB"
                change = num(100 * (a - b), "+.2f") + " pts" if key == "top1" else \
                    num(100 * (a / b - 1), "+.0f") + " %" if key == "bytes" else ""
                parts.append(f"{name} {text}{f' ({change})' if change else ''},")
        rows = {r["file"]: r for r in _rows_of(summary, v)}
        kept = rows.get(s.get("file"), {}).get("latency_p50_ms", {})
        full = next((r["latency_p50_ms"] for r in rows.values() if r["format"] == "tflite" and r["precision"] == "int8"
                     and r["per_channel"] is not False and not r["keep_float"]), {})
        parts += [f"p50 {num(kept[c], '.3f')} vs {num(full[c], '.3f')} ms on {c}," for c in kept if c in full]
        notes.append(" ".join(parts).rstrip(",") + ".")
    return [("h2", f"int8 diagnosis: {v['variant']}"), ("table", ["#", "layer", "op", "rmse/scale"], layers),
            ("list", notes)]


def budget_blocks(v: dict) -> list:
    """BUDGET searches of a variant (pipeline/budget/): one row per trial and the outcome line."""
    from mobilenet_edge.pipeline.budget import summary_line, trial_rows

    blocks = []
    for record in v.get("budgets") or []:
        header, *rows = trial_rows(record)
        blocks += [("h2", f"int8 within BUDGET={record['budget_points']:g} pt: {record['file']}"),
                   ("table", list(header), [list(r) for r in rows]),
                   *(("p", f"skipped {reason}") for reason in record.get("skipped", [])), ("p", summary_line(record))]
    return blocks


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
    broken = [v["variant"] for v in (summary.get("sweep") or {}).get("variants", []) if not v.get("ok")]
    if broken:
        status += f" {len(broken)} variant(s) of the sweep failed (see Sweep): {', '.join(broken)}."
    blocks = [("h1", TITLE), ("meta", f"{summary['generated_utc']} · {summary['out_dir']}"),
              ("status", status, bool(failing or broken)), *sweep_blocks(summary)]
    front = pareto_blocks(summary, plots, PLOT_CAPTIONS)
    blocks += front
    many = n > FEW
    blocks.append(("h2", "Which artifact to ship"))
    if many:
        blocks.append(("table", *ship_table(summary)))
    else:
        variants = {(v["task"], v["variant"]): v for v in summary["variants"]}
        for choice in summary["ship"]:
            v = variants[(choice["task"], choice["variant"])]
            blocks += [("h3", f"{v['task']} / {v['variant']}"), ("list", ship_lines(summary, v, choice))]
    blocks.append(("meta", "Only artifacts whose gate is enforced count; \"info\" rows (per-tensor int8) are there "
                           "to show what per-channel weights buy."))
    blocks += fast_path_blocks(summary)
    blocks += op_profile_blocks(summary)
    for task in dict.fromkeys(v["task"] for v in summary["variants"]):
        blocks += [("h2", f"Artifacts: {task}")]
        if many:  # one row per artifact, sortable: the grid is compared column by column
            blocks += [("meta", "Click a column header to sort (again to reverse)."), ("sortable", *flat_table(summary, task))]
        else:
            blocks += [("list", [_variant_line(v) for v in summary["variants"] if v["task"] == task]),
                       ("table", *artifact_table(summary, task))]
        blocks.append(("list", metric_lines(summary, task)))
    if summary["latency_columns"]:
        header = ["column", "CPU", "cores", "OS", "profile", "runtimes", "variants"]
        rows = [[c["column"], c["cpu"] or DASH, str(c["cores"] or DASH), c["os"] or DASH, c["profile"] or DASH,
                 "; ".join(f"{fmt}: {', '.join(names)}" for fmt, names in c["runtimes"].items()),
                 ", ".join(c["variants"])] for c in summary["latency_columns"]]
        blocks += [("h2", "Benchmark targets"), ("table", header, rows)]
    blocks += scaling_blocks(summary, plots)
    blocks += mcu_blocks(summary, plots)
    shown = {"checkpoint_resolution", "thread_scaling", "mcu_top1_vs_sram", "mcu_top1_vs_flash"} | ({"accuracy_vs_mult_adds", "accuracy_vs_latency"} if front else set())
    if set(plots) - shown:
        blocks += [("h2", "Plots"), *(("figure", PLOT_CAPTIONS.get(k, k), p) for k, p in plots.items() if k not in shown)]
    blocks += device_blocks(summary)
    for v in summary["variants"]:
        blocks += diagnosis_blocks(summary, v)
        blocks += budget_blocks(v)
    if summary["checkpoints"]:
        cps = summary["checkpoints"]
        resolutions = sorted({res for c in cps for res in c["accuracy_by_resolution"]})
        archs = len({c["arch"] for c in cps}) > 1
        header = ["task", *(["arch"] * archs), "α", "trained at", "test top-1 %", *(f"{res} px" for res in resolutions)]
        rows = [[c["task"], *([c["arch"]] * archs), str(c["alpha"]),
                 f"{'/'.join(str(r) for r in c.get('resolutions') or [c['resolution']])} px", pct(c["test_top1"]),
                 *(pct(c["accuracy_by_resolution"].get(res)) for res in resolutions)] for c in cps]
        blocks += [("h2", "Reference checkpoints: float top-1 by input resolution"), ("table", header, rows),
                   ("meta", "Float top-1 (%) on the task's test split at each input side; a network trained at one "
                            "size can fall to chance at another, so convert a checkpoint at its training resolution.")]
        if "checkpoint_resolution" in plots:
            blocks.append(("figure", PLOT_CAPTIONS["checkpoint_resolution"], plots["checkpoint_resolution"]))
    if summary["problems"]:
        blocks += [("h2", "Problems"), ("list", summary["problems"])]
    return blocks


TITLE = "MobileNet edge report"
PLOT_CAPTIONS = {
    "accuracy_vs_mult_adds": "Top-1 accuracy against Mult-Adds (log scale), as the paper's Figures 4–5; "
                             "colour: format, marker: architecture, line: Pareto front.",
    "accuracy_vs_latency": "Top-1 accuracy against p50 latency, one panel per benchmark target; "
                           "colour: format, marker: architecture, line: Pareto front.",
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
        elif kind in ("table", "sortable"):
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
    sortable = any(kind == "sortable" for kind, *_ in blocks)
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{TITLE}</title>"
           f"<style>{CSS}{SORT_CSS if sortable else ''}</style></head><body>"]
    for kind, *args in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(args[0])}</{kind}>")
        elif kind in ("meta", "status"):
            out.append(f"<p class='{kind}{' bad' if kind == 'status' and args[1] else ''}'>{e(args[0])}</p>")
        elif kind == "list":
            items = [f"<li><b>{e(i[0])}</b>: {e(i[1])}</li>" if isinstance(i, tuple) else f"<li>{e(i)}</li>"
                     for i in args[0]]
            out.append(f"<ul{' class=defs' if args[0] and isinstance(args[0][0], tuple) else ''}>{''.join(items)}</ul>")
        elif kind in ("table", "sortable"):
            out.append(_html_table(*args, sortable=kind == "sortable"))
        elif kind == "figure":
            data = base64.b64encode(args[1].read_bytes()).decode()
            out.append(f"<figure><img alt='{e(args[0])}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{e(args[0])}</figcaption></figure>")
    if sortable:  # inline, a few lines: the page stays one self-contained file that works offline
        out.append(f"<script>{SORT_JS}</script>")
    return "\n".join(out) + "\n</body></html>\n"


def _html_table(header: list[str], rows: list, sortable: bool = False) -> str:
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
    table = "<table class=sortable>" if sortable else "<table>"
    return f"<div class=wrap>{table}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
