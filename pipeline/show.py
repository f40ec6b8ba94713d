"""What the command line prints: each function turns a stage's result into the text a person reads.

pipeline/cli.py parses arguments, calls one library function and prints what these return; nothing here
computes a figure, it only lays out what the stages wrote (their JSON records and result dataclasses).
"""
from __future__ import annotations

import json
from pathlib import Path

DASH = "—"


def columns(rows) -> list[str]:
    """Rows of cells as left-aligned columns two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


def exported(result) -> str:
    """`export`: one line per artifact written (precision, format, path, size, input type) and the manifest."""
    out = []
    for a in result.artifacts:
        spec = a.inputs[0]
        q = f" scale={spec['scale']:.6g} zero_point={spec['zero_point']}" if spec.get("scale") else ""
        out.append(f"{a.precision:>8} {a.format:<6} {a.path}  ({a.path.stat().st_size / 1e6:.2f} MB, "
                   f"input {spec['dtype']}{q})")
    out.append(f"manifest: {result.manifest}")
    return "\n".join(out)


def budgets(artifacts) -> tuple[str, bool]:
    """BUDGET: each search's trials and one line of outcome; False when a search met no trial."""
    from mobilenet_edge.pipeline.budget import summary_line, trial_rows

    out, met = [], True
    for a in artifacts:
        record = dict(a.extra).get("budget")
        if not record:
            continue
        out.append(f"budget search for {a.path.name}:")
        out += ["  " + line for line in columns(trial_rows(record))]
        out += [f"  skipped {reason}" for reason in record["skipped"]]
        out.append(summary_line(record))
        met = met and record["met"]
    return "\n".join(out), met


def verdict(result) -> str:
    """validation.json's path, PASS / FAIL, and each failing gate."""
    return "\n".join([f"validation: {result.path} — {'PASS' if result.passed else 'FAIL'}",
                      *(f"  FAIL {failure}" for failure in result.failures)])


def validation_table(data: dict) -> str:
    """validation.json as a table: top-1, drop, agreement, KL, SQNR and the gate of every artifact."""
    out = [f"{'artifact':<44} {'top-1':>7} {'drop':>6} {'agree':>7} {'KL':>8} {'SQNR dB':>8}  gate"]
    if data["float"]:
        out.append(f"{'float (Keras)':<44} {100 * data['float']['top1']:>6.2f}%")
    for row in data["artifacts"]:
        m, g = row["metrics"], row["gate"]
        top1 = f"{100 * m['top1']:6.2f}%" if "top1" in m else f"{DASH:>7}"
        drop = f"{m['top1_drop_points']:+6.2f}" if "top1_drop_points" in m else f"{DASH:>6}"
        status = "pass" if g["passed"] else ("FAIL" if g["enforced"] else "fail (not gated)")
        if g.get("verdict", "").startswith("undecided"):
            status += f", {g['verdict']}"
        name = row["file"] + (f" [{row['runtime']}]" if row.get("runtime") else "")  # an extra runtime's row
        out.append(f"{name:<44} {top1:>7} {drop:>6} {100 * m['top1_agreement']:6.2f}% {m['kl_mean']:8.5f} "
                   f"{m['sqnr_db']:8.2f}  {status}")
    return "\n".join(out)


def device_validation(data: dict, path: Path) -> str:
    """validation-<target>.json: every artifact's top-1 here and on the device, agreement, largest difference."""
    out = [f"\non the device {data['target']} ({data['device']['machine']}, {data['images']} images):",
           f"{'artifact':<44} {'top-1 here':>10} {'on device':>10} {'agree here':>10} {'agree float':>11} "
           f"{'max |Δ|':>9}  runtime here / on device"]
    for r in data["artifacts"]:
        top1 = [f"{100 * r[s]['top1']:9.2f}%" if r[s]["top1"] is not None else f"{DASH:>10}" for s in ("host", "device")]
        runtimes = " / ".join(f"{r[s]['runtime']['name']} {r[s]['runtime']['version']}" for s in ("host", "device"))
        out.append(f"{r['file']:<44} {top1[0]} {top1[1]} {100 * r['top1_agreement_host']:9.2f}% "
                   f"{100 * r['device']['top1_agreement_float']:10.2f}% {r['max_abs_diff_host']:9.2g}  {runtimes}"
                   f"{'  DIFFERS' if r['differs'] else ''}")
    out.append(f"written: {path}")
    return "\n".join(out)


def bench(path: Path) -> str:
    """benchmark-<target>.json: the machine, then p50 / p90 / start-up time and size per model and runtime."""
    data = json.loads(Path(path).read_text())
    host = data["host"]
    out = [f"{data.get('target', '')}: {host.get('machine')} {host.get('cpu') or ''} ({host.get('cores')} cores)",
           f"{'model':<44} {'runtime':<18} {'thr':>3} {'p50 ms':>8} {'p90 ms':>8} {'init ms':>8} {'MB':>7}"]
    for r in data["results"]:
        lat = r["latency_ms"]
        out.append(f"{r['model']:<44} {r['runtime']:<18} {r['threads']:>3} {lat['p50']:>8.3f} {lat['p90']:>8.3f} "
                   f"{r['init_ms']:>8.1f} {r['bytes'] / 1e6:>7.2f}{timing_note(r)}")
    out.append(f"written: {path}")
    return "\n".join(out)


def op_profile(path: Path, top: int = 5) -> str:
    """profile-<target>.json: per artifact and runtime, the whole model, the parts' sum, the top op types and layers."""
    data = json.loads(Path(path).read_text())
    host = data["host"]
    out = [f"{data.get('target', '')}: {host.get('cpu') or host.get('machine')} ({host.get('cores')} cores), "
           f"{data['threads']} thread(s); CPU flags: {' '.join(data.get('cpu_flags') or []) or '-'}"]
    for r in data["results"]:
        out.append(f"{r['file']} on {r['runtime']} {r.get('version') or ''}: whole {r['whole_ms']:.3f} ms, parts "
                   f"{r['sum_ms']:.3f} ms (residual {r['residual_ms']:+.3f} ms)")
        if r.get("caveat"):
            out.append(f"  note: {r['caveat']}")
        out.append("  by op type: " + ", ".join(f"{o['op']} x{o['count']} {o['ms']:.3f} ms" for o in r["by_op"][:top]))
        for layer in sorted(r["layers"], key=lambda x: -x["ms"])[:top]:
            out.append(f"  {layer['ms']:8.3f} ms  {layer['op']:<22} {layer['name'][:70]}")
    out.append(f"written: {path}")
    return "\n".join(out)


def timing_note(r: dict) -> str:
    """'  p50 ±1.2 % (ci)' and why the run is marked: the runner's statistics (older results have none)."""
    if r.get("ci_half_width") is None:
        return ""
    marks = "; ".join(d for a in r.get("attempts", [])[-1:] for d in a.get("disturbed", []))
    return f"  p50 ±{100 * r['ci_half_width']:.1f} % ({r['stop']}){f'  DISTURBED: {marks}' if r['disturbed'] else ''}"


def android(result) -> str:
    """`android`: the data problems found, the weights used, what was shipped and what was left out, and why."""
    out = [f"data: {problem}" for problem in result.data_problems]
    if result.checkpoint:
        how = "trained" if result.trained else "reused: same files and settings" if result.reused else "given"
        out.append(f"weights: {result.checkpoint} ({how})")
    for s in result.selection.shipped:
        top1 = f"top-1 {100 * s.top1:.1f} %" if s.top1 is not None else f"agreement {100 * s.agreement:.1f} %"
        out.append(f"shipped  {s.entry['file']}  ({top1}, {s.entry['bytes'] / 1e6:.2f} MB)")
    out += [f"left out {file}: {why}" for file, why in result.selection.left_out]
    out.append(f"android assets: {result.android} (README.md lists both)")
    return "\n".join(out)


def _nums(values) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else "[" + ", ".join(f"{v:g}" for v in values) + "]"


def predictions(result) -> str:
    """`predict`: the preprocessing the artifact's record asks for, then the top-k labels of every image."""
    pre = result.record.preprocessing
    out = [f"{result.artifact}\n  preprocessing from {result.record.source}: {pre.resolution}x{pre.resolution}, "
           f"central crop {pre.crop_fraction:g}, {pre.resize_method}, (pixel - mean {_nums(pre.mean)}) / "
           f"std {_nums(pre.std)}"]
    for p in result.predictions:
        out.append(f"\n{p.image}\n  {'rank':>4}  {'class':>5}  {'label':<24} {'score':>8}")
        out += [f"  {rank:>4}  {index:>5}  {label:<24} {100 * score:>6.2f} %" for rank, (index, label, score)
                in enumerate(p.top, 1)]
    if result.skipped:
        out.append(f"\nskipped {len(result.skipped)} file(s) that could not be decoded:")
        out += [f"  {image}" for image, _ in result.skipped]
    return "\n".join(out)


def sweep(result, targets, strict: bool) -> str:
    """`sweep`: one row per variant (what each step did), failures, gate findings and the totals."""
    devices = [f"benchmark {t}" for t in targets if t not in ("local", "mcu")]  # a column per device target
    devices += ["mcu"] if "mcu" in targets else []  # TARGETS=mcu: fits the SRAM / FLASH budget or not
    rows = [("variant", "convert", "validate", "benchmark", *devices, "result")]
    for o in result.outcomes:
        state = f"FAILED at {o.failed_step}" if not o.ok else "gate FAILS" if o.gate_failures else \
            "unchanged" if o.unchanged else "done"
        rows.append((o.variant.name, *(o.steps.get(s, DASH) for s in ("convert", "validate", "benchmark", *devices)),
                     state))
    out = columns(rows)
    out += [f"{o.variant.name}: {o.error} (log: {o.log})" for o in result.failed]
    out += [f"{o.variant.name}: gate fails for {', '.join(o.gate_failures)} (shown in the report, "
            f"never on the Pareto front{'' if strict else '; --strict makes this exit 1'})" for o in result.gates_failed]
    n, unchanged = len(result.outcomes), sum(o.unchanged for o in result.outcomes)
    ran = f"{result.executor}, {result.workers} worker(s) x {result.threads} thread(s)" if result.workers else \
        "nothing to redo"
    out.append(f"{n} variant{'s' * (n != 1)}: {n - unchanged - len(result.failed)} done, {unchanged} unchanged, "
               f"{len(result.failed)} failed · {ran} · {result.seconds:.1f} s")
    if "mcu" in targets:
        out.append(mcu_fits(result.outcomes))
    if result.report:
        out.append(f"report: {result.report}{'' if result.report_written else ' (unchanged)'}")
    return "\n".join(out)


def mcu_fits(outcomes) -> str:
    """TARGETS=mcu: which variants fit the budget, and the most accurate of them (from their mcu.json)."""
    from mobilenet_edge.pipeline.report.mcu import best_fit

    records = []
    for o in outcomes:
        try:
            records.append(json.loads((o.folder / "mcu" / "mcu.json").read_text()))
        except (OSError, ValueError):
            continue
    fit = [r["variant"] for r in records if r["fits"]]
    over = [r["variant"] for r in records if not r["fits"]]
    best = best_fit([dict(r, label=r["variant"]) for r in records]) if records else None
    return (f"microcontroller: fit {', '.join(fit) or 'none'}; over {', '.join(over) or 'none'}"
            + (f"; most accurate that fits: {best['variant']} (top-1 {100 * best['accuracy']['tflm_top1']:.2f} % on "
               f"TFLite Micro's kernels)" if best else ""))


def mcu(result, layers: int = 8) -> str:
    """`mcu`: the file, TFLite Micro's accuracy beside LiteRT's, memory against the budget, Vela's figures, the
    C source, and the verdict (the figures by which it is over budget)."""
    r, kib = result.record, lambda n: f"{n / 1024:.1f} KiB"
    acc, ref, opt = r["accuracy"], r["accuracy"]["vs_litert_reference"], r["accuracy"]["vs_litert"]
    pct = lambda v: f"{100 * v:.2f} %" if v is not None else DASH  # noqa: E731
    out = [f"file: {result.folder / r['file']}  ({r['model_bytes']} bytes, TFLite Micro {r['tflm_version']}; "
           f"ops: {', '.join(f'{k} x{v}' for k, v in r['ops'].items())})",
           f"accuracy on TFLite Micro's kernels, {acc['images']} held-out images: top-1 {pct(acc.get('tflm_top1'))}",
           f"  vs LiteRT reference kernels (same file): top-1 {pct(ref.get('top1'))}, agreement "
           f"{pct(ref['top1_agreement'])}, largest output gap {ref['max_step_difference']} step(s)",
           f"  vs LiteRT default kernels (same file):   top-1 {pct(opt.get('top1'))}, agreement "
           f"{pct(opt['top1_agreement'])}, largest output gap {opt['max_step_difference']} step(s)",
           f"arena: {r['arena_bytes']} bytes ({kib(r['arena_bytes'])}; smallest that runs, {r['arena_probes']} probes)"
           f"  flash: {r['model_bytes']} bytes ({kib(r['model_bytes'])})"]
    npu = r.get("npu")
    if npu:
        out.append(f"{npu['npu']} (Vela {npu['version']}, {npu['system_config']}, {npu['memory_mode']}): "
                   f"{npu['npu_ops']} NPU / {npu['cpu_ops']} CPU ops, SRAM {kib(npu['sram_bytes'])}, flash "
                   f"{kib(npu['flash_bytes'])}, {npu['cycles']} cycles = {npu['inference_ms']:.3f} ms at "
                   f"{npu['clock_hz'] / 1e6:.0f} MHz; compiled: {result.folder / npu['file']}")
        top = sorted(npu["layers"], key=lambda row: -(row["cycles"] if isinstance(row["cycles"], int) else 0))[:layers]
        rows = [("op", "on", "cycles", "% cycles", "MACs", "layer")] + [
            (str(x["op"]), str(x["target"]), str(x["cycles"]), f"{x['cycles_percent']:.1f}", str(x["macs"]),
             str(x["name"]).split(";")[0][-48:]) for x in top]
        out += [f"  the {len(top)} costliest of {len(npu['layers'])} layers:"] + ["  " + line for line in columns(rows)]
    budget = r["budget"]
    out.append(f"budget SRAM {kib(budget['sram_bytes'])}, FLASH {kib(budget['flash_bytes'])}: peak SRAM "
               f"{kib(r['peak_sram_bytes'])}, flash {kib(r['flash_bytes'])} ({r['deployed_file']})")
    if r["c_source"]:
        c = r["c_source"]
        out.append(f"C source: {result.folder / c['source']} + {c['header']} ({c['symbol']}[], {c['bytes']} bytes, alignas(16))")
    out.append("fits: yes" if result.fits else "does NOT fit: " + "; ".join(result.short) + " (no C source written)")
    out.append(f"record: {result.path}")
    return "\n".join(out)
