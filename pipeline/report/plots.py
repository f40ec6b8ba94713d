"""The report's plots (matplotlib, Agg, no pyplot state): PNG files under OUT/plots/.

The same encoding in every plot: the fill colour is the artifact kind (TFLite fp32, fp16, dynamic range,
int8, ONNX fp32, int8, ...), the marker shape the architecture family (V1 circle, V2 square, V3-Small
triangle, V3-Large diamond); the Keras float reference is hollow. The accuracy plots draw the Pareto front
(pipeline.report.pareto_fronts) as a line and name the artifacts on it; with many variants the dominated
points are faded and unnamed (the report's table names every one).
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from mobilenet_edge.pipeline.artifacts import write_bytes
from mobilenet_edge.pipeline.archs import ARCHS
from mobilenet_edge.pipeline.report.text import MULT_ADDS_FRONT, arch_title
from mobilenet_edge.pipeline.report.mcu import top1_vs_flash, top1_vs_sram
from mobilenet_edge.pipeline.report.threads import scaling_figure

COLORS = {"TFLite fp32": "#1f77b4", "TFLite fp16": "#ff7f0e", "TFLite dynamic range": "#2ca02c",
          "TFLite int8": "#d62728", "TFLite int8 per-tensor": "#9467bd", "TFLite int8 selective": "#8c564b",
          "ONNX fp32": "#17becf", "ONNX int8": "#e377c2", "Keras float (reference)": "white"}
SHAPES = {key: arch.marker for key, arch in ARCHS.items()}
DPI = 110
FEW = 4  # up to this many variants every variant is named in the accuracy plots; beyond, only the front
FAIL_RING = {"marker": "o", "markersize": 16, "markerfacecolor": "none", "markeredgecolor": "#c62828",
             "markeredgewidth": 2, "linestyle": "none"}
FRONT_LINE = {"color": "#222", "linewidth": 1.6, "alpha": 0.75, "zorder": 2}
LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
LEADER = {"arrowstyle": "-", "color": "#888", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 4}  # label moved away


def write_plots(summary: dict, plots_dir: Path) -> dict[str, Path]:
    """Draw every plot the data allows; returns {name: path} in report order."""
    plots = {}
    for name, draw in (("accuracy_vs_mult_adds", accuracy_vs_mult_adds), ("accuracy_vs_latency", accuracy_vs_latency),
                       ("size_per_format", size_per_format), ("checkpoint_resolution", checkpoint_resolution),
                       ("thread_scaling", scaling_figure), ("mcu_top1_vs_sram", top1_vs_sram),
                       ("mcu_top1_vs_flash", top1_vs_flash)):
        fig = draw(summary)
        if fig is not None:
            buf = io.BytesIO()
            FigureCanvasAgg(fig)
            fig.savefig(buf, format="png", dpi=DPI)
            plots[name] = write_bytes(Path(plots_dir) / f"{name}.png", buf.getvalue())
    return plots


def _kind(r: dict) -> str:
    """The colour key: the artifact's label without the number of float layers."""
    if r["reference"]:
        return "Keras float (reference)"
    return "TFLite int8 selective" if r.get("keep_float") else r["label"]


def _style(r: dict, faded: bool = False) -> dict:
    reference = r["reference"]
    return {"marker": SHAPES.get(r.get("arch", "v1"), "P"), "color": COLORS.get(_kind(r), "#7f7f7f"),
            "markersize": 8 if not reference else 7, "markeredgecolor": "#333" if not faded else "#777",
            "markeredgewidth": 1.3 if reference else 0.6, "alpha": 0.45 if faded else 1.0, "linestyle": "none"}


def _legend(fig, records: list, front: bool, failing: bool):
    """Colour = kind, marker = architecture, outside the axes so that it never hides a point."""
    kinds = list(dict.fromkeys(_kind(r) for r in records))
    handles = [Line2D([], [], label=k, marker="o", color=COLORS.get(k, "#7f7f7f"), markeredgecolor="#333",
                      markersize=8, linestyle="none") for k in kinds if k in COLORS]
    archs = list(dict.fromkeys(r.get("arch", "v1") for r in records))
    handles += [Line2D([], [], label=f"MobileNet {arch_title(a)}", marker=SHAPES.get(a, "P"), color="#bbb",
                       markeredgecolor="#333", markersize=8, linestyle="none") for a in archs]
    if front:
        handles.append(Line2D([], [], label="Pareto front", **{k: v for k, v in FRONT_LINE.items() if k != "zorder"}))
    if failing:
        handles.append(Line2D([], [], label="fails its gate", **FAIL_RING))
    return fig.legend(handles=handles, loc="outside right upper", fontsize=9, frameon=False)


def _fails(r: dict) -> bool:
    return r["gate_passed"] is False and r["gate_enforced"]


def _variants(summary: dict) -> dict:
    return {(v["task"], v["variant"]): v for v in summary["variants"]}


def _front_label(r: dict, variants: dict) -> str:
    v = variants[(r["task"], r["variant"])]
    return f"{v['label'].replace(' / ', '/').replace(' px', '')} {r['label'].removeprefix('TFLite ')}"


def _draw(ax, records: list, x_of, front: list, variants: dict, many: bool) -> list:
    """Points (dominated ones faded when many), the front as a line, and the names of the front's artifacts
    (returned, for `_declutter`)."""
    on_front = {id(r) for r in front}
    for r in records:
        x, y = x_of(r), 100 * r["top1"]
        ax.plot(x, y, zorder=4 if id(r) in on_front else 3, **_style(r, faded=many and id(r) not in on_front))
        if _fails(r):
            ax.plot(x, y, zorder=5, **FAIL_RING)
    if len(front) > 1:
        ax.plot([x_of(r) for r in front], [100 * r["top1"] for r in front], **FRONT_LINE)
    if not many:
        return []
    # Above-left of its point: the empty side of the front (dominated points lie below-right). Not part of
    # the layout: the axes keep their size whatever `_declutter` does to the labels.
    labels = [ax.annotate(_front_label(r, variants), (x_of(r), 100 * r["top1"]), xytext=(-6, 5),
                          textcoords="offset points", ha="right", va="bottom", fontsize=8.5, color="#111",
                          bbox=LABEL_BOX, zorder=6, arrowprops=LEADER) for r in front]
    for label in labels:
        label.set_in_layout(False)
    return labels


def _declutter(fig, labels: list) -> None:
    """Lift each label above the earlier ones it would overlap (measured on the laid-out figure)."""
    if len(labels) < 2:
        return
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    points_per_pixel = 72 / fig.dpi
    placed = []
    for label in labels:
        for _ in range(12):
            box = Text.get_window_extent(label, renderer).expanded(1.0, 1.1)  # the text, not its leader line
            hit = next((b for b in placed if box.overlaps(b)), None)
            if hit is None:
                break
            dx, dy = label.xyann
            label.xyann = (dx, dy + (hit.y1 - box.y0 + 2) * points_per_pixel)
        placed.append(Text.get_window_extent(label, renderer))


def _front_of(summary: dict, name: str) -> list:
    wanted = {(f["task"], f["variant"], f["file"]) for f in summary.get("pareto", {}).get(name, [])}
    rows = [r for r in summary["records"] if (r["task"], r["variant"], r["file"]) in wanted]
    return rows


def accuracy_vs_mult_adds(summary: dict) -> Figure | None:
    records = [r for r in summary["records"] if r["top1"] is not None and r["mult_adds"]]
    if not records:
        return None
    variants = _variants(summary)
    many = len({(r["task"], r["variant"]) for r in records}) > FEW
    fig = Figure(figsize=(12.5 if many else 11, 7 if many else 6), layout="constrained")
    ax = fig.add_subplot()
    kinds = list(dict.fromkeys(_kind(r) for r in records))
    spread = 0.010 if len({r["mult_adds"] for r in records}) > 1 else 0.004  # decades between kinds at one x

    def x_of(r):
        return r["mult_adds"] / 1e6 * 10 ** (spread * (kinds.index(_kind(r)) - (len(kinds) - 1) / 2))

    front = sorted(_front_of(summary, MULT_ADDS_FRONT), key=lambda r: r["mult_adds"])
    labels = _draw(ax, records, x_of, front, variants, many)
    if not many:
        for v in summary["variants"]:
            tops = [100 * r["top1"] for r in records if (r["task"], r["variant"]) == (v["task"], v["variant"])]
            if tops:
                ax.annotate(v["label"], (v["mult_adds"] / 1e6, max(tops)), xytext=(0, 12), textcoords="offset points",
                            ha="center", fontsize=9.5, color="#333")
    xs = sorted({r["mult_adds"] / 1e6 for r in records})
    ax.set_xscale("log")
    ax.set_xlim(xs[0] / (2.6 if many else 1.6), xs[-1] * 1.6)  # room left of the cheapest for its label
    if len(xs) <= 6:  # few variants: a tick at each
        ax.xaxis.set_major_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(xs, [f"{x:.3g} M" for x in xs])
    else:
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g} M"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    _pad_y(ax, [100 * r["top1"] for r in records])
    ax.set_xlabel("Mult-Adds per image (millions, log scale)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs. computation: every artifact of every variant"
                 + (" (front named, dominated points faded)" if many else ""))
    ax.grid(True, which="both", alpha=0.3)
    _legend(fig, records, front=len(front) > 1, failing=any(_fails(r) for r in records))
    _declutter(fig, labels)
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
    variants = _variants(summary)
    many = len({(r["task"], r["variant"]) for r in records}) > FEW
    n = len(columns)
    cols = min(n, 2 if many else 3)
    rows = math.ceil(n / cols)
    width = 6.8 if many else 4.6
    fig = Figure(figsize=(2.6 + max(5.0, width * cols), (6.0 if many else 4.6) * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    labels = []
    for i, column in enumerate(columns):
        ax = axes[i // cols][i % cols]
        timed = [r for r in records if column in r["latency_p50_ms"]]

        def x_of(r, column=column):
            return r["latency_p50_ms"][column]

        front = sorted(_front_of(summary, column), key=x_of)
        labels += _draw(ax, timed, x_of, front, variants, many)
        if not many:
            for key in dict.fromkeys((r["task"], r["variant"]) for r in timed):
                # the label sits right of the variant's slowest point: nothing of that variant is in its way
                slowest = max((r for r in timed if (r["task"], r["variant"]) == key), key=x_of)
                ax.annotate(variants[key]["label"], (x_of(slowest), 100 * slowest["top1"]), xytext=(10, 0),
                            textcoords="offset points", ha="left", va="center", fontsize=9, color="#333",
                            bbox=LABEL_BOX)
        ax.set_xscale("log")
        xs = [x_of(r) for r in timed]
        ax.set_xlim(min(xs) / (3.5 if many else 1.5), max(xs) * (1.8 if many else 3.5))  # room for the labels
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
    _legend(fig, records, front=any(len(_front_of(summary, c)) > 1 for c in columns),
            failing=any(_fails(r) for r in records))
    fig.suptitle("Accuracy vs. latency (left is faster)", fontsize=13)
    _declutter(fig, labels)
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
    kinds = {}
    for r in records:
        kinds.setdefault(r["label"], r)
    many = len(variants) > 6
    fig = Figure(figsize=(min(16.0, max(9.0, 3.4 + 0.45 * len(kinds) * len(variants))), 6.2 if many else 5.5),
                 layout="constrained")
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
        bars = ax.bar(xs, ys, width * 0.92, color=COLORS.get(_kind(sample), "#7f7f7f"), edgecolor="black",
                      linewidth=0.5, label=label, hatch="//" if sample["format"] == "onnx" else None)
        if not many:
            ax.bar_label(bars, labels=[f"{y:#.3g}".rstrip(".") for y in ys], fontsize=7.5, padding=2,
                         rotation=90 if len(variants) * len(kinds) > 12 else 0)
    if many:
        ax.set_xticks(range(len(variants)), [v["label"] for v in variants], rotation=45, ha="right", fontsize=9)
    else:
        ax.set_xticks(range(len(variants)), [f"{v['variant']}\n({v['task']})" for v in variants])
    if log:
        ax.set_yscale("log")
    ax.set_ylim(top=max(sizes) * (3 if log else 1.18))
    ax.set_ylabel("file size (MB" + (", log scale)" if log else ")"))
    ax.set_title("Artifact size per format (hatched: ONNX)" + ("; the size depends on the width, not the input side"
                                                                if many else ""))
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
        trained = c.get("resolutions") or [c["resolution"]]
        label = (f"{c['task']} {arch_title(c.get('arch') or 'v1')} α {c['alpha']} "
                 f"(trained at {'/'.join(map(str, trained))} px)")
        (line,) = ax.plot(xs, ys, marker=SHAPES.get(c.get("arch") or "v1", "o"), color=f"C{i}", label=label)
        for side in trained:
            if side in c["accuracy_by_resolution"]:
                ax.plot(side, 100 * c["accuracy_by_resolution"][side], marker="*", markersize=16,
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
