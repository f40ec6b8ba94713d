"""Stage 8 (rendering) — the report's sections for a grid of variants: what the sweep ran, the Pareto fronts
(where to choose), one flat table a person can sort, and a compact "which artifact to ship" table.

Blocks as in pipeline.report.render; ("sortable", header, rows) is a table whose HTML headers sort on click.
"""
from __future__ import annotations

from mobilenet_edge.pipeline.report.text import DASH, MULT_ADDS_FRONT, PARETO_NOTE, arch_title, gate_text, mb, num, pct


def _ms(x) -> str:
    return num(x, ".3f" if x is None or x < 10 else ".1f")


def _variant_of(summary: dict, r: dict) -> dict:
    return next(v for v in summary["variants"] if (v["task"], v["variant"]) == (r["task"], r["variant"]))


def front_name(name: str, summary: dict) -> str:
    """'mult_adds' -> 'Mult-Adds'; a latency column keeps its name ('latency' when it is the only one)."""
    if name == MULT_ADDS_FRONT:
        return "Mult-Adds"
    return "latency" if len(summary["latency_columns"]) == 1 else name


def sweep_blocks(summary: dict) -> list:
    """What the last sweep over OUT ran: grid, settings, how the latency was measured, what failed."""
    sweep = summary.get("sweep")
    if not sweep:
        return []
    grid, records = sweep.get("grid", {}), sweep.get("variants", [])
    failed = [r for r in records if not r.get("ok")]
    lines = [f"Grid: {' + '.join(arch_title(a) for a in grid.get('archs', []))} × α "
             f"{', '.join(f'{a:.2f}' for a in grid.get('alphas', []))} × "
             f"{', '.join(str(r) for r in grid.get('resolutions', []))} px × {', '.join(grid.get('formats', []))}: "
             f"{len(records)} variants, {len(records) - len(failed)} built, {len(failed)} failed "
             f"(task {sweep.get('task')}, weights {sweep.get('weights')})."]
    v, c = sweep.get("validation") or {}, sweep.get("calibration") or {}
    lines.append(f"Validation on {v.get('limit') or 'all'} held-out images per variant (seed {v.get('seed')}); "
                 f"int8 calibration on {c.get('count')} images (seed {c.get('seed')}"
                 f"{', from ' + c['folder'] if c.get('folder') else ''}).")
    b = sweep.get("benchmark") or {}
    if b.get("enabled"):
        other = b.get("busy_cores_before")
        busy = "" if other is None else f"; other programs kept {other:g} of {b.get('cores')} cores busy just before" + \
            (" — the latencies are inflated" if b.get("inflated") else "")
        lines.append(f"Latency: {b.get('note', '')}; runner threads: {b.get('threads') or 'every core'}, "
                     f"{b.get('runs')} timed runs per artifact{busy}.")
    lines += [f"FAILED {r['variant']} at {r.get('failed_step')}: {r.get('error')}" for r in failed]
    return [("h2", "Sweep"), ("list", lines)]


def pareto_blocks(summary: dict, plots: dict, captions: dict) -> list:
    """One table per front (cheapest first) and the two accuracy plots."""
    blocks = []
    by_key = {(r["task"], r["variant"], r["file"]): r for r in summary["records"]}
    for name, members in summary.get("pareto", {}).items():
        rows = [by_key[(m["task"], m["variant"], m["file"])] for m in members]
        if name == MULT_ADDS_FRONT:
            title, cost = "Accuracy vs. Mult-Adds", ("Mult-Adds M", lambda r: num(r["mult_adds"] / 1e6, ".1f"))
        else:
            title, cost = f"Accuracy vs. latency on {name}", ("p50 ms", lambda r: _ms(r["latency_p50_ms"][name]))
        header = ["variant", "artifact", cost[0], "top-1 %", "size MB", "file"]
        body = [[_variant_of(summary, r)["label"], r["label"], cost[1](r), pct(r["top1"]), mb(r["bytes"]), r["file"]]
                for r in rows]
        blocks += [("h3", f"{title}: {len(rows)} artifact{'s' * (len(rows) != 1)} on the front"),
                   ("table", header, body)]
    if not blocks:
        return []
    figures = [("figure", captions[k], plots[k]) for k in ("accuracy_vs_mult_adds", "accuracy_vs_latency") if k in plots]
    return [("h2", "Pareto front: the artifacts to choose from"), ("meta", PARETO_NOTE), *blocks, *figures]


def flat_table(summary: dict, task: str) -> tuple[list[str], list]:
    """Every artifact of a task in one row each, with the variant's arch, alpha and side as columns."""
    columns = [c["column"] for c in summary["latency_columns"]]
    header = ["arch", "α", "px", "artifact", "size MB", "Mult-Adds M", "params M", "top-1 %", "drop pts",
              "agreement %", "KL", "SQNR dB", "gate", *(f"p50 ms {c}" for c in columns), "Pareto front"]
    rows = []
    for r in (r for r in summary["records"] if r["task"] == task):
        v = _variant_of(summary, r)
        cells = [v["arch_title"], num(r["alpha"], ".2f"), str(r["resolution"]), r["label"], mb(r["bytes"]),
                 num(r["mult_adds"] and r["mult_adds"] / 1e6, ".2f"), num(r["params"] and r["params"] / 1e6, ".3f"),
                 pct(r["top1"]), num(r["top1_drop_points"], ".2f"), pct(r["top1_agreement"]),
                 num(r["kl_mean"], ".1e"), num(r["sqnr_db"], ".1f"), gate_text(r)]
        for c in columns:
            throttled = any(x["throttled"] for x in r["latency"] if x["column"] == c)
            cells.append(_ms(r["latency_p50_ms"].get(c)) + ("*" if throttled else ""))
        cells.append(", ".join(front_name(n, summary) for n in r.get("pareto", [])))
        failing = r["gate_passed"] is False and r["gate_enforced"]
        rows.append({"cells": cells, "title": r["file"], "cls": "ref" if r["reference"] else "bad" if failing else ""})
    return header, rows


def ship_table(summary: dict) -> tuple[list[str], list]:
    """Per variant: the smallest passing artifact, the fastest passing one per target, what not to ship."""
    columns = [c["column"] for c in summary["latency_columns"]]
    header = ["variant", "smallest that passes", *(f"fastest that passes on {c}" for c in columns), "fails its gate"]
    records = {(r["task"], r["variant"], r["file"]): r for r in summary["records"]}
    rows = []
    for choice in summary["ship"]:
        v = _variant_of(summary, choice)
        small = records.get((choice["task"], choice["variant"], choice["smallest"]))
        cells = [v["label"], f"{small['label']} ({mb(small['bytes'])} MB)" if small else DASH]
        for c in columns:
            fast = records.get((choice["task"], choice["variant"], choice["fastest"].get(c)))
            cells.append(f"{fast['label']} ({_ms(fast['latency_p50_ms'][c])} ms)" if fast else DASH)
        cells.append(", ".join(records[(choice["task"], choice["variant"], f)]["label"] for f in choice["failing"])
                     or DASH)
        rows.append(cells)
    return header, rows


SORT_JS = """
document.querySelectorAll("table.sortable th").forEach((th, i) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
  const dir = th.dataset.dir === "asc" ? "desc" : "asc";
  th.closest("tr").querySelectorAll("th").forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const key = r => { const t = r.cells[i].textContent.trim(), n = parseFloat(t); return isNaN(n) ? [1, t] : [0, n]; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    const c = x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0); return dir === "asc" || x[0] !== y[0] ? c : -c; });
  rows.forEach(r => body.appendChild(r));
}));
"""
SORT_CSS = ("table.sortable th{cursor:pointer;user-select:none}table.sortable th:hover{background:#e6e9ef}"
            "table.sortable th[data-dir=asc]::after{content:' ▲'}table.sortable th[data-dir=desc]::after{content:' ▼'}")
