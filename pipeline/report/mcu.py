"""Stage 8, microcontrollers: the report's section over every `OUT/<task>/<variant>/mcu/mcu.json` (written by
`make mcu` or a sweep with TARGETS=mcu): which variants fit the SRAM / flash budget, the most accurate one that
fits, and the two Pareto plots "top-1 vs peak SRAM" and "top-1 vs flash" with the budget drawn.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from mobilenet_edge.pipeline.report.text import DASH, arch_title, pct

log = logging.getLogger(__name__)

PATTERN = "*/*/mcu/mcu.json"
CAPTIONS = {"mcu_top1_vs_sram": "Top-1 on TFLite Micro's kernels against peak SRAM (the arena found by search, or "
                                "Vela's SRAM with an NPU); dashed: the budget, line: Pareto front.",
            "mcu_top1_vs_flash": "Top-1 on TFLite Micro's kernels against flash (the deployed file's bytes); dashed: "
                                 "the budget, line: Pareto front."}


def mcu_records(out_dir: Path) -> list[dict]:
    """Every mcu.json under OUT, oldest first, each with its folder and label; damaged ones are skipped."""
    found = []
    for path in sorted(Path(out_dir).glob(PATTERN), key=lambda p: p.stat().st_mtime_ns):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("report: %s unreadable (%s); left out", path, exc)
            continue
        record["label"] = f"{arch_title(record['arch'])} α {record['alpha']:g} / {record['resolution']}"
        record["folder"] = str(path.parent.relative_to(out_dir))
        found.append(record)
    return found


def budget_of(records: list[dict]) -> dict:
    """The budget the plots draw: the latest run's (a sweep writes one budget into every record)."""
    return records[-1]["budget"]


def fits(record: dict, budget: dict) -> bool:
    return (record["peak_sram_bytes"] <= budget["sram_bytes"] and record["flash_bytes"] <= budget["flash_bytes"]
            and record["accuracy"]["within_one_step"])


def best_fit(records: list[dict]) -> dict | None:
    """The most accurate variant that fits the budget (ties: the smaller peak SRAM)."""
    budget = budget_of(records) if records else None
    fitting = [r for r in records if fits(r, budget) and r["accuracy"].get("tflm_top1") is not None]
    return max(fitting, key=lambda r: (r["accuracy"]["tflm_top1"], -r["peak_sram_bytes"]), default=None)


def _front(records: list[dict], key: str) -> list[dict]:
    """Cheapest first; each point more accurate than every cheaper one."""
    front, best = [], -1.0
    for r in sorted(records, key=lambda r: (r[key], -r["accuracy"]["tflm_top1"])):
        if r["accuracy"]["tflm_top1"] > best:
            front.append(r)
            best = r["accuracy"]["tflm_top1"]
    return front


def _figure(summary: dict, key: str, limit_key: str, xlabel: str, title: str) -> "Figure | None":
    from matplotlib.figure import Figure  # only when the plots are drawn

    records = [r for r in summary.get("mcu", []) if r["accuracy"].get("tflm_top1") is not None]
    if not records:
        return None
    budget = budget_of(summary["mcu"])
    limit = budget[limit_key] / 1024
    best = best_fit(summary["mcu"])
    fig = Figure(figsize=(9, 5.4), layout="constrained")
    ax = fig.add_subplot()
    for r in records:
        ok = fits(r, budget)
        x, y = r[key] / 1024, 100 * r["accuracy"]["tflm_top1"]
        ax.plot(x, y, marker="o", markersize=9, linestyle="none", markeredgecolor="#333",
                color="#2e7d32" if ok else "#bdbdbd", zorder=4)
        text = r["label"] + ("  ★ most accurate that fits" if best is not None and r is best else "")
        ax.annotate(text, (x, y), xytext=(7, 4), textcoords="offset points", fontsize=8.5,
                    fontweight="bold" if r is best else "normal", zorder=6,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    front = _front(records, key)
    if len(front) > 1:
        ax.step([r[key] / 1024 for r in front], [100 * r["accuracy"]["tflm_top1"] for r in front], where="post",
                color="#222", linewidth=1.4, alpha=0.7, zorder=3)
    ax.axvline(limit, color="#c62828", linestyle="--", linewidth=1.5)
    ax.text(limit, 0.02, f" budget {limit:g} KiB", color="#c62828", fontsize=9, transform=ax.get_xaxis_transform())
    xs = [r[key] / 1024 for r in records] + [limit]
    ax.set_xlim(0, max(xs) * 1.35)
    ys = [100 * r["accuracy"]["tflm_top1"] for r in records]
    ax.set_ylim(max(0.0, min(ys) - 10), min(100.0, max(ys) + 8))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 on TFLite Micro's kernels (%)")
    npu = budget.get("npu") or "none"
    ax.set_title(f"{title} (green: fits SRAM {budget['sram_bytes'] / 1024:g} KiB and FLASH "
                 f"{budget['flash_bytes'] / 1024:g} KiB; NPU {npu})", fontsize=11)
    ax.grid(True, alpha=0.3)
    return fig


def top1_vs_sram(summary: dict) -> "Figure | None":
    return _figure(summary, "peak_sram_bytes", "sram_bytes", "peak SRAM (KiB)", "Top-1 vs. peak SRAM")


def top1_vs_flash(summary: dict) -> "Figure | None":
    return _figure(summary, "flash_bytes", "flash_bytes", "flash (KiB)", "Top-1 vs. flash")


def mcu_blocks(summary: dict, plots: dict) -> list:
    """The report's "Microcontroller" section: the verdict line, one row per variant, the two plots."""
    records = summary.get("mcu") or []
    if not records:
        return []
    budget = budget_of(records)
    best = best_fit(records)
    kib = lambda n: f"{n / 1024:.1f}"  # noqa: E731
    verdict = (f"Most accurate variant that fits: {best['label']} ({best['variant']}), top-1 "
               f"{pct(best['accuracy']['tflm_top1'])} % on TFLite Micro's kernels, peak SRAM "
               f"{kib(best['peak_sram_bytes'])} KiB, flash {kib(best['flash_bytes'])} KiB."
               if best else "No variant fits the budget.")
    header = ["variant", "top-1 % (TFLM)", "vs LiteRT ref. (steps)", "arena KiB", "peak SRAM KiB", "flash KiB",
              "NPU ops / CPU ops", "NPU ms", "fits"]
    rows = []
    for r in records:
        npu = r.get("npu")
        rows.append([r["label"], pct(r["accuracy"].get("tflm_top1")),
                     str(r["accuracy"]["vs_litert_reference"]["max_step_difference"]), kib(r["arena_bytes"]),
                     kib(r["peak_sram_bytes"]), kib(r["flash_bytes"]),
                     f"{npu['npu_ops']} / {npu['cpu_ops']}" if npu else DASH,
                     f"{npu['inference_ms']:.3f}" if npu else DASH, "yes" if fits(r, budget) else "no"])
    blocks = [("h2", "Microcontroller"),
              ("list", [f"Budget: SRAM {kib(budget['sram_bytes'])} KiB, FLASH {kib(budget['flash_bytes'])} KiB, "
                        f"NPU {budget.get('npu') or 'none'}.", verdict]),
              ("table", header, rows),
              ("meta", "Arena: the smallest TFLite Micro arena that runs the model (bisection; host build, 64-bit "
                       "pointers). With an NPU, peak SRAM and flash are Vela's (compiler estimates).")]
    blocks += [("figure", CAPTIONS[k], plots[k]) for k in CAPTIONS if k in plots]
    return blocks
