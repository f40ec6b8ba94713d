"""The report's thread scaling: p50 against threads per artifact and target (`THREADS="1 2 4"`).

`scaling` reads the latency entries of the report's records (one per target, machine, thread count and
runtime) into one row per artifact and target that was timed at two or more thread counts; `scaling_figure`
draws p50 against threads, one panel per target; `scaling_blocks` is the report's section. A user sees
where adding cores stops paying: the fastest count, and the speed-up over the fewest threads.
"""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

NOTE = ("p50 latency (ms) of one inference at each thread count; speed-up = p50 at the fewest threads / p50 at "
        "the most; best = the count with the lowest p50 (beyond it, more cores do not pay). * marks a throttled "
        "run.")


def scaling(records: list) -> list[dict]:
    """[{task, variant, file, label, target, machine, p50_ms: {threads: ms}, throttled: [threads], best_threads,
    speedup}] for every artifact timed at >= 2 thread counts on one target (the faster runtime per count)."""
    rows = []
    for r in records:
        groups = {}
        for lat in r.get("latency") or []:
            if lat.get("threads") is None or lat.get("p50_ms") is None:
                continue
            group = groups.setdefault((lat["target"], lat["machine"]), {"p50": {}, "throttled": set()})
            t = int(lat["threads"])
            if t not in group["p50"] or lat["p50_ms"] < group["p50"][t]:
                group["p50"][t] = lat["p50_ms"]
            if lat.get("throttled"):
                group["throttled"].add(t)
        for (target, machine), group in sorted(groups.items(), key=lambda kv: (kv[0][0] != "local", str(kv[0]))):
            p50 = dict(sorted(group["p50"].items()))
            if len(p50) < 2:
                continue
            counts = list(p50)
            rows.append({"task": r["task"], "variant": r["variant"], "file": r["file"], "label": r["label"],
                         "target": target, "machine": machine, "p50_ms": p50,
                         "throttled": sorted(group["throttled"]), "best_threads": min(p50, key=p50.get),
                         "speedup": p50[counts[0]] / p50[counts[-1]] if p50[counts[-1]] else None})
    return rows


def _targets(rows: list) -> list[tuple]:
    return list(dict.fromkeys((r["target"], r["machine"]) for r in rows))


def scaling_figure(summary: dict) -> Figure | None:
    """p50 against threads (log-log: a halving per doubling is a straight line), one panel per target."""
    rows = summary.get("thread_scaling") or []
    if not rows:
        return None
    targets = _targets(rows)
    fig = Figure(figsize=(5.2 * len(targets), 4.2), layout="constrained")
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    for ax, (target, machine) in zip(axes, targets):
        counts = set()
        for r in (r for r in rows if (r["target"], r["machine"]) == (target, machine)):
            threads, p50 = list(r["p50_ms"]), list(r["p50_ms"].values())
            counts.update(threads)
            ax.plot(threads, p50, marker="o", linewidth=1.4, label=f"{r['variant']} {r['label']}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(sorted(counts)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(c) for c in sorted(counts)])
        ax.set_xlabel("threads")
        ax.set_ylabel("p50 latency (ms, log scale)")
        ax.set_title(f"{target} ({machine})", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def scaling_blocks(summary: dict, plots: dict) -> list[tuple]:
    """The section: per target a table (artifact, p50 at each count, speed-up, best), then the plot."""
    rows = summary.get("thread_scaling") or []
    if not rows:
        return []
    blocks = [("h2", "Thread scaling"), ("meta", NOTE)]
    for target, machine in _targets(rows):
        mine = [r for r in rows if (r["target"], r["machine"]) == (target, machine)]
        counts = sorted({t for r in mine for t in r["p50_ms"]})
        header = ["artifact", *(f"{c} thr" for c in counts), "speed-up", "best"]
        table = [{"cells": [f"{r['variant']} {r['label']}",
                            *(_ms(r["p50_ms"].get(c)) + ("*" if c in r["throttled"] else "") for c in counts),
                            f"x{r['speedup']:.2f}" if r["speedup"] else "—", f"{r['best_threads']} thr"],
                  "title": r["file"]} for r in mine]
        blocks += [("h3", f"{target} ({machine})"), ("table", header, table)]
    if "thread_scaling" in plots:
        blocks.append(("figure", "p50 latency against threads, one panel per target (log-log).",
                       plots["thread_scaling"]))
    return blocks


def _ms(x) -> str:
    return "—" if x is None else f"{x:.3f}" if x < 10 else f"{x:.1f}"
