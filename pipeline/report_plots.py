"""The report's plots (matplotlib, Agg, no pyplot state): PNG files under OUT/plots/.

Colour is the precision (fp32, fp16, dynamic, int8, int8 per-tensor, int8 with float layers) and the
marker shape the format (TFLite circle, ONNX square, Keras star), the same in every plot.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

from pipeline.artifacts import write_bytes

SHAPES = {"tflite": "o", "onnx": "s", "keras": "*"}
COLORS = {"fp32": "#1f77b4", "fp16": "#ff7f0e", "dynamic": "#2ca02c", "int8": "#d62728",
          "int8 per-tensor": "#9467bd", "int8 selective": "#8c564b"}
DPI = 110
FAIL_RING = {"marker": "o", "markersize": 16, "markerfacecolor": "none", "markeredgecolor": "#c62828",
             "markeredgewidth": 2, "linestyle": "none"}


def write_plots(summary: dict, plots_dir: Path) -> dict[str, Path]:
    """Draw every plot the data allows; returns {name: path} in report order."""
    plots = {}
    for name, draw in (("accuracy_vs_mult_adds", accuracy_vs_mult_adds), ("accuracy_vs_latency", accuracy_vs_latency),
                       ("size_per_format", size_per_format), ("checkpoint_resolution", checkpoint_resolution)):
        fig = draw(summary)
        if fig is not None:
            buf = io.BytesIO()
            FigureCanvasAgg(fig)
            fig.savefig(buf, format="png", dpi=DPI)
            plots[name] = write_bytes(Path(plots_dir) / f"{name}.png", buf.getvalue())
    return plots


def _precision_key(r: dict) -> str:
    if r["precision"] == "int8" and r.get("keep_float"):
        return "int8 selective"
    if r["precision"] == "int8" and r.get("per_channel") is False:
        return "int8 per-tensor"
    return r["precision"]


def _style(r: dict) -> dict:
    return {"marker": SHAPES.get(r["format"], "D"), "color": COLORS.get(_precision_key(r), "#7f7f7f"),
            "markersize": 13 if r["format"] == "keras" else 8, "markeredgecolor": "black", "markeredgewidth": 0.6,
            "linestyle": "none"}


def _kinds(records: list) -> dict:
    """label -> a representative record, in table order."""
    kinds = {}
    for r in records:
        kinds.setdefault(r["label"], r)
    return kinds


def _kind_legend(fig, records: list, failing: bool = False):
    """One legend entry per artifact kind, outside the axes so that it never hides a point."""
    handles = [Line2D([], [], label=label, **_style(r)) for label, r in _kinds(records).items()]
    if failing:
        handles.append(Line2D([], [], label="fails its gate", **FAIL_RING))
    return fig.legend(handles=handles, loc="outside right upper", fontsize=9, frameon=False)


def _fails(r: dict) -> bool:
    return r["gate_passed"] is False and r["gate_enforced"]


def _short(v: dict) -> str:
    return f"α {v['alpha']} · {v['resolution']} px"


def accuracy_vs_mult_adds(summary: dict) -> Figure | None:
    records = [r for r in summary["records"] if r["top1"] is not None and r["mult_adds"]]
    if not records:
        return None
    fig = Figure(figsize=(11, 6), layout="constrained")
    ax = fig.add_subplot()
    kinds = list(_kinds(records))
    spread = 0.012 if len({r["mult_adds"] for r in records}) > 1 else 0.004  # decades between kinds at one x
    for r in records:
        x = r["mult_adds"] / 1e6 * 10 ** (spread * (kinds.index(r["label"]) - (len(kinds) - 1) / 2))
        ax.plot(x, 100 * r["top1"], zorder=3, **_style(r))
        if _fails(r):
            ax.plot(x, 100 * r["top1"], zorder=4, **FAIL_RING)
    floats = sorted((r["mult_adds"] / 1e6, 100 * r["top1"]) for r in records if r["reference"])
    if len(floats) > 1:
        ax.plot(*zip(*floats), color="#444", linewidth=1, linestyle="--", zorder=2)
    for v in summary["variants"]:
        tops = [100 * r["top1"] for r in records if (r["task"], r["variant"]) == (v["task"], v["variant"])]
        if tops:
            ax.annotate(_short(v), (v["mult_adds"] / 1e6, max(tops)), xytext=(0, 12), textcoords="offset points",
                        ha="center", fontsize=9.5, color="#333")
    xs = sorted({r["mult_adds"] / 1e6 for r in records})
    ax.set_xscale("log")
    ax.set_xlim(xs[0] / 1.6, xs[-1] * 1.6)
    ax.xaxis.set_major_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(xs, [f"{x:.3g} M" for x in xs])
    _pad_y(ax, [100 * r["top1"] for r in records])
    ax.set_xlabel("Mult-Adds per image (millions, log scale)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs. computation: every artifact of every variant")
    ax.grid(True, which="both", alpha=0.3)
    _kind_legend(fig, records, failing=any(_fails(r) for r in records))
    return fig


def _pad_y(ax, values: list, top: float = 0.25):
    lo, hi = min(values), max(values)
    span = max(hi - lo, 1.0)
    ax.set_ylim(lo - 0.15 * span, hi + top * span)


def accuracy_vs_latency(summary: dict) -> Figure | None:
    columns = [c["column"] for c in summary["latency_columns"]]
    records = [r for r in summary["records"] if r["top1"] is not None and r["latency_p50_ms"]]
    if not columns or not records:
        return None
    n = len(columns)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.4 + max(5.0, 4.6 * cols), 4.6 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    variants = {(v["task"], v["variant"]): v for v in summary["variants"]}
    for i, column in enumerate(columns):
        ax = axes[i // cols][i % cols]
        timed = [r for r in records if column in r["latency_p50_ms"]]
        for r in timed:
            x, y = r["latency_p50_ms"][column], 100 * r["top1"]
            ax.plot(x, y, zorder=3, **_style(r))
            if _fails(r):
                ax.plot(x, y, zorder=4, **FAIL_RING)
        for key in dict.fromkeys((r["task"], r["variant"]) for r in timed):
            # the label sits right of the variant's slowest point: nothing of that variant is in its way
            slowest = max((r for r in timed if (r["task"], r["variant"]) == key), key=lambda r: r["latency_p50_ms"][column])
            ax.annotate(_short(variants[key]), (slowest["latency_p50_ms"][column], 100 * slowest["top1"]),
                        xytext=(10, 0), textcoords="offset points", ha="left", va="center", fontsize=9, color="#333",
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        ax.set_xscale("log")
        xs = [r["latency_p50_ms"][column] for r in timed]
        ax.set_xlim(min(xs) / 1.5, max(xs) * 3.5)  # room for the labels
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
        ax.tick_params(axis="x", which="minor", labelsize=8)
        ax.set_title(column, fontsize=11)
        ax.set_xlabel("p50 latency per image (ms, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    _pad_y(axes[0][0], [100 * r["top1"] for r in records])
    for row in axes:
        row[0].set_ylabel("top-1 accuracy (%)")
    _kind_legend(fig, records, failing=any(_fails(r) for r in records))
    fig.suptitle("Accuracy vs. latency (left is faster)", fontsize=13)
    return fig


def _minor_label(x: float, _pos) -> str:
    """Label 2 and 5 of each decade: a log axis spanning less than a decade has no other label."""
    return f"{x:g}" if x > 0 and round(x / 10 ** math.floor(math.log10(x) + 1e-9), 6) in (2, 5) else ""


def size_per_format(summary: dict) -> Figure | None:
    records = [r for r in summary["records"] if r["bytes"] and not r["reference"]]
    if not records:
        return None
    variants = [v for v in summary["variants"] if any((r["task"], r["variant"]) == (v["task"], v["variant"])
                                                        for r in records)]
    kinds = _kinds(records)
    fig = Figure(figsize=(min(16.0, max(9.0, 3.4 + 0.55 * len(kinds) * len(variants))), 5.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(kinds)
    sizes = [r["bytes"] / 1e6 for r in records]
    log = max(sizes) / min(sizes) > 40  # tiny and large variants together: a linear axis hides the tiny ones
    for k, (label, sample) in enumerate(kinds.items()):
        xs, ys = [], []
        for i, v in enumerate(variants):
            r = next((r for r in records
                      if r["label"] == label and (r["task"], r["variant"]) == (v["task"], v["variant"])), None)
            if r:
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(r["bytes"] / 1e6)
        style = _style(sample)
        bars = ax.bar(xs, ys, width * 0.92, color=style["color"], edgecolor="black", linewidth=0.5, label=label,
                      hatch="//" if sample["format"] == "onnx" else None)
        ax.bar_label(bars, labels=[f"{y:#.3g}".rstrip(".") for y in ys], fontsize=7.5, padding=2,
                     rotation=90 if len(variants) * len(kinds) > 12 else 0)
    ax.set_xticks(range(len(variants)), [f"{v['variant']}\n({v['task']})" for v in variants])
    if log:
        ax.set_yscale("log")
    ax.set_ylim(top=max(sizes) * (3 if log else 1.18))
    ax.set_ylabel("file size (MB" + (", log scale)" if log else ")"))
    ax.set_title("Artifact size per format (hatched: ONNX)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=9, frameon=False)
    return fig


def checkpoint_resolution(summary: dict) -> Figure | None:
    checkpoints = summary["checkpoints"]
    if not checkpoints:
        return None
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    ax = fig.add_subplot()
    resolutions = sorted({res for c in checkpoints for res in c["accuracy_by_resolution"]})
    for i, c in enumerate(checkpoints):
        xs = list(c["accuracy_by_resolution"])
        ys = [100 * y for y in c["accuracy_by_resolution"].values()]
        label = f"{c['task']} α {c['alpha']} (trained at {c['resolution']} px)"
        (line,) = ax.plot(xs, ys, marker="o", color=f"C{i}", label=label)
        if c["resolution"] in c["accuracy_by_resolution"]:
            ax.plot(c["resolution"], 100 * c["accuracy_by_resolution"][c["resolution"]], marker="*", markersize=16,
                    color=line.get_color(), markeredgecolor="black", linestyle="none")
    classes = {c["classes"] for c in checkpoints if c["classes"]}
    if len(classes) == 1:
        chance = 100 / classes.pop()
        ax.axhline(chance, color="#888", linestyle="--", linewidth=1)
        ax.text(resolutions[-1], chance + 1.5, "chance", ha="right", color="#666", fontsize=9)
    ax.set_xticks(resolutions, [str(r) for r in resolutions])
    ax.set_ylim(0, 100)
    ax.set_xlabel("input resolution (px, square)")
    ax.set_ylabel("float top-1 on the test split (%)")
    ax.set_title("Reference checkpoints: float top-1 by input resolution (★ = training resolution)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="best")
    return fig
