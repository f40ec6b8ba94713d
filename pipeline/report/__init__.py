"""Stage 8 — report: every variant under OUT in one Markdown page, one HTML page, one JSON summary, plots.

Reads only the files the other stages leave in each variant folder (manifest.json, cost.json,
validation.json, benchmark-<target>.json, validation-<target>.json; any but the manifest may be missing), OUT/sweep.json when a
sweep wrote the folder, and the reference checkpoint records (pipeline/checkpoints/<task>/*.json). A file
that cannot be read is listed under "Problems" in the report instead of stopping it.

Variants of several architectures (V1, V2, V3-Small, V3-Large) share one report: every record carries its
`arch`, and the Pareto fronts (accuracy against Mult-Adds, and against latency per benchmark target) are
computed over every artifact of every variant.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mobilenet_edge.pipeline import formats
from mobilenet_edge.pipeline.report.mcu import PATTERN as MCU_PATTERN, mcu_records
from mobilenet_edge.pipeline.report import checks
from mobilenet_edge.pipeline.archs import ARCHS, alpha_text
from mobilenet_edge.pipeline.report import device as report_device, threads as report_threads
from mobilenet_edge.pipeline.artifacts import write_json, write_text
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.manifest import MANIFEST, manifest_problem
from mobilenet_edge.pipeline.report.fastpath import speed_flags
from mobilenet_edge.pipeline.report.op_profile import collect_profiles
from mobilenet_edge.pipeline.report.text import MULT_ADDS_FRONT, PRECISION_LABEL, arch_title, fastest_runtime

log = logging.getLogger(__name__)

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
ARCH_ORDER = {key: i for i, key in enumerate(ARCHS)}  # the registry's order
FORMAT_ORDER = {"keras": 0, "tflite": 1, "onnx": 2}
PRECISION_ORDER = {"fp32": 0, "fp16": 1, "dynamic": 2, "int8": 3}


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
    from mobilenet_edge.pipeline.report.plots import write_plots  # matplotlib only when a report is written
    from mobilenet_edge.pipeline.report.render import document, render_html, render_markdown

    out_dir = Path(out_dir)
    summary = collect(out_dir, checkpoints)
    summary["inputs_sha256"] = inputs_digest(out_dir, checkpoints)
    plots = write_plots(summary, out_dir / "plots")
    summary_path = write_json(out_dir / "summary.json", _strict_json(summary))
    blocks = document(summary, plots)
    md = write_text(out_dir / "report.md", render_markdown(blocks))
    page = write_text(out_dir / "report.html", render_html(blocks))
    log.info("report: %d variant(s), %d artifact(s) -> %s", len(summary["variants"]),
             sum(not r["reference"] for r in summary["records"]), md)
    return ReportResult(md, page, summary_path, tuple(plots.values()))


def inputs_digest(out_dir: Path, checkpoints: Path | None = CHECKPOINTS) -> str:
    """sha256 over every file the report reads (and the report's own code): same digest, same report."""
    out_dir = Path(out_dir)
    files = [p for folder in sorted(m.parent for m in out_dir.glob("*/*/manifest.json"))
             for p in sorted(folder.glob("*.json")) if p.name != "sweep-state.json"]
    files += sorted(out_dir.glob(MCU_PATTERN))
    files += [out_dir / "sweep.json"] + sorted(Path(__file__).parent.glob("*.py"))
    if checkpoints is not None:
        files += sorted(Path(checkpoints).glob("*/*.json"))
    h = hashlib.sha256()
    for path in files:
        if path.is_file():
            h.update(f"{path.relative_to(out_dir) if path.is_relative_to(out_dir) else path.name}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    for keras in sorted(out_dir.glob("*/*/model.keras")):  # the Keras row shows its size
        h.update(f"{keras.relative_to(out_dir)}\0{keras.stat().st_size}\0".encode())
    # Every row is checked against its file: a file replaced, emptied or deleted changes the report.
    for model in sorted(p for c in formats.containers() for p in out_dir.glob(f"*/*/*.{c}")):
        stat = model.stat()
        h.update(f"{model.relative_to(out_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return h.hexdigest()


def report_is_current(out_dir: Path, checkpoints: Path | None = CHECKPOINTS) -> bool:
    """True when OUT/report.* exist and were written from exactly today's inputs (see inputs_digest)."""
    out_dir = Path(out_dir)
    try:
        summary = json.loads((out_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return all((out_dir / name).is_file() for name in ("report.md", "report.html")) \
        and summary.get("inputs_sha256") == inputs_digest(out_dir, checkpoints)


# ----------------------------------------------------------------------------------------------- reading

def collect(out_dir: Path, checkpoints: Path | None = CHECKPOINTS) -> dict:
    """The summary.json document: variants, one record per artifact, latency columns, ship choices."""
    folders = sorted(p.parent for p in Path(out_dir).glob("*/*/manifest.json"))
    if not folders:
        raise PipelineError(f"expected variant folders <task>/<variant>/manifest.json under {out_dir}, received none")
    problems, variants, records, columns, device_targets = [], [], [], {}, []
    for folder in folders:
        damage = manifest_problem(folder / MANIFEST, expect=folder.name, required=("variant", "artifacts"))
        if damage:
            log.warning("report: %s is %s; left out", folder / MANIFEST, damage)
            problems.append(f"{folder / MANIFEST}: expected the manifest of {folder.name}, received {damage}; export "
                            "the variant again to rebuild it (left out of this report)")
            continue
        manifest = _read(folder / MANIFEST, problems)
        variant, rows = _variant_records(folder, manifest, problems, columns, device_targets)
        variants.append(variant)
        records.extend(rows)
    _label_columns(columns)
    for r in records:
        r["latency_p50_ms"] = {columns[k]["column"]: v["p50_ms"] for k, v in r.pop("_latency").items()}
        r["latency"] = [{**{f: columns[k][f] for f in ("column", "target", "machine", "threads")}, **v}
                        for k, v in r.pop("_latency_all")]
    variants.sort(key=lambda v: (v["task"], ARCH_ORDER.get(v["arch"], len(ARCH_ORDER)), v["arch"], v["alpha"] or 0,
                                 v["resolution"] or 0, v["variant"]))
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
        "device_targets": sorted(device_targets),
        "checkpoints": _checkpoint_records(checkpoints, variants, problems),
        "problems": problems,
        "sweep": _read(Path(out_dir) / "sweep.json", problems),
    }
    summary["thread_scaling"] = report_threads.scaling(records)
    summary["ship"] = ship_choices(summary)
    summary["pareto"] = pareto_fronts(summary)
    summary["op_profiles"] = collect_profiles(folders, problems)
    summary["fast_path_flags"] = speed_flags(summary)
    summary["mcu"] = mcu_records(Path(out_dir))  # make mcu / TARGETS=mcu (pipeline.report.mcu)
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


def _variant_records(folder: Path, manifest: dict, problems: list, columns: dict,
                     device_targets: list) -> tuple[dict, list]:
    info = manifest.get("variant", {})
    task, name = info.get("task") or folder.parent.name, info.get("name") or folder.name
    cost = _read(folder / "cost.json", problems) or {}
    validation = _read(folder / "validation.json", problems) or {}
    # Rows of the runtimes measured beside the default one (OpenVINO) carry "runtime"; the artifact's own row has none.
    checked = {a.get("file"): a for a in validation.get("artifacts", []) if "runtime" not in a}
    base = {"variant": name, "task": task, "arch": info.get("arch") or "v1", "alpha": info.get("alpha"),
            "resolution": info.get("resolution"), "mult_adds": cost.get("total_mult_adds"),
            "params": cost.get("total_params")}
    variant = {**base, "arch_title": arch_title(base["arch"]), "label": variant_label(base),
               "folder": str(folder), "keras_params": cost.get("keras_params"),
               "validated": bool(validation), "validation_passed": validation.get("passed"),
               "images": validation.get("images"), "labelled": validation.get("labelled"),
               "source": validation.get("source"), "calibration": manifest.get("calibration"),
               "diagnosis": validation.get("diagnosis"), "benchmarks": [],
               "budgets": [{"file": a["file"], **a["budget"]} for a in manifest.get("artifacts", []) if a.get("budget")]}
    keras = folder / "model.keras"
    float_metrics = validation.get("float") or {}
    rows = [{**base, "file": "model.keras", "label": "Keras float (reference)", "format": "keras",
             "precision": "fp32", "per_channel": None, "keep_float": 0, "io_dtype": "float32",
             "bytes": keras.stat().st_size if keras.is_file() else None, "reference": True,
             **_metrics({"top1": float_metrics.get("top1"), "top5": float_metrics.get("top5")}),
             "gate": None, "gate_passed": None, "gate_enforced": False}]
    disk = {}
    for entry, check, now in checks.verified(folder, manifest, checked, problems):
        disk[entry.get("file")] = now
        gate = check.get("gate")
        keep = entry.get("keep_float") or 0
        row = {**base, "file": entry.get("file"), "format": entry.get("format"), "precision": entry.get("precision"),
               "per_channel": entry.get("per_channel", check.get("per_channel")),
               "keep_float": len(keep) if isinstance(keep, list) else int(keep), "io_dtype": _io_dtype(entry),
               "bytes": now.bytes, "reference": False, **_metrics(check.get("metrics") or {}),
               "gate": gate, "gate_passed": gate.get("passed") if gate else None,
               "gate_enforced": bool(gate) and gate.get("enforced", True), "on_disk": now.status,
               "fast_path": entry.get("fast_path"), "gpu": entry.get("gpu"),
               "fast_path_by_runtime": entry.get("fast_path_by_runtime"),
               "validated_on": {a["runtime"]: {"top1": (a.get("metrics") or {}).get("top1"),
                                               "top1_agreement": (a.get("metrics") or {}).get("top1_agreement"),
                                               "gate_passed": (a.get("gate") or {}).get("passed")}
                                for a in validation.get("artifacts", []) if a.get("runtime")
                                and a.get("file") == entry.get("file") and a.get("sha256") == check.get("sha256")}}
        row["label"] = artifact_label(row) + ("" if now.status == checks.OK else f" ({checks.NOTES[now.status]})")
        rows.append(row)
    for r in rows:
        r["_latency"], r["_latency_all"] = {}, []
    by_file = {r["file"]: r for r in rows}
    for path in sorted(folder.glob("benchmark-*.json")):
        doc = _read(path, problems)
        if doc is not None:
            variant["benchmarks"].append(path.name)
            stale = _add_latencies(doc, path, by_file, columns, name, disk)
            for file in stale:
                problems.append(checks.problem(folder, file, f"{path.name} timed another file (stale, not shown); "
                                                             "run make bench"))
    report_device.attach(folder, manifest, by_file, problems, device_targets)
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


def variant_label(v: dict) -> str:
    """'V2 1.00 / 64 px': alpha means a different width in each family, so it is never shown alone."""
    alpha = alpha_text(v["alpha"]) if isinstance(v.get("alpha"), (int, float)) else "?"
    return f"{arch_title(v.get('arch') or 'v1')} {alpha} / {v.get('resolution')} px"


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


def _add_latencies(doc: dict, path: Path, by_file: dict, columns: dict, variant: str, disk: dict) -> list[str]:
    """Add the document's latencies to the rows of the files they were measured on; returns the files whose
    result was measured on another version of the file (stale, left out)."""
    host = doc.get("host") or {}
    target = doc.get("target") or path.stem.removeprefix("benchmark-")
    stale = []
    for result in doc.get("results", []):
        row = by_file.get(result.get("model"))
        p50 = (result.get("latency_ms") or {}).get("p50")
        if row is None or p50 is None:
            continue
        if row["file"] in disk and not checks.measured_on(result, disk[row["file"]]):
            if disk[row["file"]].status == checks.OK:
                stale.append(row["file"])
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
        latency = {"runtime": result.get("runtime"), "runtime_version": result.get("runtime_version"), "p50_ms": p50, "p90_ms": result["latency_ms"].get("p90"),
                   "throttled": bool(thermal.get("throttled")), "p50_ci95_ms": result.get("p50_ci95_ms"),
                   "ci_half_width": result.get("ci_half_width"), "disturbed": bool(result.get("disturbed"))}
        row["_latency_all"].append((key, latency))
        best = row["_latency"].get(key)
        if best is None or p50 < best["p50_ms"]:  # two runtimes in one run: the table shows the faster
            row["_latency"][key] = latency
    return sorted(set(stale))


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
                        "arch": record.get("arch") or "v1", "alpha": record.get("alpha"),
                        "resolution": record.get("resolution"),
                        "resolutions": record.get("resolutions") or [record.get("resolution")],
                        "test_top1": record.get("test_top1"), "classes": len(record.get("classes") or []) or None,
                        "accuracy_by_resolution": dict(sorted(by_res.items()))})
    return sorted(out, key=lambda c: (c["task"], ARCH_ORDER.get(c["arch"], len(ARCH_ORDER)), c["alpha"] or 0))


def ship_choices(summary: dict) -> list:
    """Per variant: the smallest artifact that passes its (enforced) gate, and the fastest passing one per target."""
    choices = []
    for v in summary["variants"]:
        rows = [r for r in summary["records"] if (r["task"], r["variant"]) == (v["task"], v["variant"])]
        passing = [r for r in rows if r["gate_passed"] and r["gate_enforced"] and r["bytes"]
                   and r.get("on_disk", checks.OK) == checks.OK]
        smallest = min(passing, key=lambda r: r["bytes"], default=None)
        fastest = {}
        for c in summary["latency_columns"]:
            timed = [r for r in passing if c["column"] in r["latency_p50_ms"]
                     and _runtime_passes(r, c["column"])]
            if timed:
                fastest[c["column"]] = min(timed, key=lambda r: r["latency_p50_ms"][c["column"]])["file"]
        failing = [r["file"] for r in rows if r["gate_passed"] is False and r["gate_enforced"]]
        choices.append({"task": v["task"], "variant": v["variant"], "smallest": smallest["file"] if smallest else None,
                        "fastest": fastest, "failing": failing})
    return choices


def _runtime_passes(r: dict, column: str) -> bool:
    """False when the runtime that was fastest has a validation row of its own and that row fails its gate."""
    best = fastest_runtime(r, column)
    own = (r.get("validated_on") or {}).get(best["runtime"]) if best else None
    return own is None or own["gate_passed"] is not False


def pareto_front(points: list[tuple[float, float, object]]) -> list:
    """The items of (cost, accuracy, item) points that no other point beats on both axes, cheapest first."""
    front, best = [], -math.inf
    for cost, accuracy, item in sorted(points, key=lambda p: (p[0], -p[1])):
        if accuracy > best:
            front.append(item)
            best = accuracy
    return front


def pareto_fronts(summary: dict) -> dict:
    """{"mult_adds" | latency column: [{task, variant, file}, ...]}; marks each record's `pareto` list.

    Candidates: artifacts (not the Keras reference) that were validated on labels and pass an enforced gate.
    """
    candidates = [r for r in summary["records"] if not r["reference"] and r["top1"] is not None
                  and r["gate_enforced"] and r["gate_passed"] and r.get("on_disk", checks.OK) == checks.OK]
    fronts = {MULT_ADDS_FRONT: pareto_front([(r["mult_adds"], r["top1"], r) for r in candidates if r["mult_adds"]])}
    for c in summary["latency_columns"]:
        column = c["column"]
        fronts[column] = pareto_front([(r["latency_p50_ms"][column], r["top1"], r) for r in candidates
                                       if column in r["latency_p50_ms"]])
    for r in summary["records"]:
        r["pareto"] = [name for name, front in fronts.items() if any(f is r for f in front)]
    return {name: [{"task": r["task"], "variant": r["variant"], "file": r["file"]} for r in front]
            for name, front in fronts.items() if front}


def _strict_json(value):
    """Infinite SQNR (identical outputs) becomes null: JSON has no Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value
