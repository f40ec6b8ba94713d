"""Stage 8: the report over a fake OUT folder written as the other stages write it (JSON only, no models)."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from matplotlib.image import imread

from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.report import write_report
from mobilenet_edge.pipeline.report.text import METRICS

TASK = "fashion-mnist"
LOCAL = "local x86_64 2 thr"
PI = "ssh-raspberrypi.local aarch64 4 thr"

# file suffix: (format, precision, per_channel, bytes at alpha 0.25, top1 drift in points, agreement, kl, sqnr)
KINDS = {
    "fp32.tflite": ("tflite", "fp32", None, 878024, 0.0, 1.0, 3e-9, 125.3),
    "fp16.tflite": ("tflite", "fp16", None, 466884, 0.03, 0.9994, 2.4e-6, 58.2),
    "dynamic.tflite": ("tflite", "dynamic", None, 286176, 0.10, 0.9967, 1.7e-4, 39.9),
    "int8.tflite": ("tflite", "int8", True, 316272, 0.06, 0.988, 0.0103, 28.2),
    "int8_per_tensor.tflite": ("tflite", "int8", False, 250944, 0.92, 0.9778, 0.0176, 22.4),
    "int8_keep3.tflite": ("tflite", "int8", True, 370184, 0.12, 0.9908, 0.0097, 29.2),
    "fp32.onnx": ("onnx", "fp32", None, 881737, 0.0, 1.0, 5e-9, float("inf")),
    "int8.onnx": ("onnx", "int8", True, 332257, 0.11, 0.99, 0.0104, 28.3),
}
LAYERS = ("conv1", "conv_pw_7", "conv_preds", "conv_pw_8", "conv_pw_9")


def _tensor(name: str, variant: str) -> str:
    return f"{variant}_1/{name}_relu_1/Relu6;{variant}_1/{name}_bn_1/batchnorm/add_1;{variant}_1/{name}_1/convolution"


def artifact_file(folder: Path, file: str) -> str:
    """A stand-in artifact on disk (the report checks each row against its file); returns its sha256."""
    (folder / file).write_bytes(file.encode())
    return hashlib.sha256(file.encode()).hexdigest()


def write_variant(out: Path, alpha: float, float_top1: float, scale: float, mult_adds: int, params: int,
                  kinds=tuple(KINDS), drift: dict | None = None, benchmarks: dict | None = None,
                  diagnosis: bool = False) -> Path:
    """One variant folder as convert/validate/bench leave it; `drift` overrides points per file suffix."""
    name = f"mobilenet_{alpha:.2f}_64"
    folder = out / TASK / name
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"k" * int(scale * 950_000))
    artifacts, checked = [], []
    for kind in kinds:
        fmt, precision, per_channel, size, points, agree, kl, sqnr = KINDS[kind]
        points = (drift or {}).get(kind, points)
        entry = {"file": f"{name}_{kind}", "format": fmt, "precision": precision, "bytes": int(size * scale),
                 "sha256": artifact_file(folder, f"{name}_{kind}"), "per_channel": per_channel,
                 "inputs": [{"name": "x", "shape": [1, 64, 64, 3], "dtype": "uint8" if precision == "int8" else "float32"}]}
        if "keep3" in kind:
            entry["keep_float"] = [_tensor(layer, name) for layer in LAYERS[:3]]
        artifacts.append(entry)
        rule = "top1_agreement >= 0.999" if precision == "fp32" else "top1_agreement >= 0.995" if precision == "fp16" \
            else "top1_drop_points <= 1.0"
        passed = points <= 1.0 if "drop" in rule else agree >= float(rule.split()[-1])
        checked.append({"file": entry["file"], "format": fmt, "precision": precision, "per_channel": per_channel,
                        "metrics": {"top1": round(float_top1 - points / 100, 4), "top5": 0.998,
                                    "top1_drop_points": points, "top1_agreement": agree, "kl_mean": kl,
                                    "sqnr_db": sqnr, "max_abs_diff": 0.3, "mean_abs_diff": 0.002},
                        "gate": {"rule": rule, "value": points if "drop" in rule else agree, "passed": passed,
                                 "enforced": per_channel is not False}})
    manifest = {"schema": 1, "variant": {"arch": "v1", "name": name, "alpha": alpha, "resolution": 64, "task": TASK,
                                         "classes": 10}, "calibration": {"count": 200, "seed": 0}, "artifacts": artifacts}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "cost.json").write_text(json.dumps({"total_mult_adds": mult_adds, "total_params": params,
                                                  "keras_params": params + 10954}))
    validation = {"variant": name, "task": TASK, "images": 10000, "labelled": True, "source": "fashion-mnist test split",
                  "float": {"top1": float_top1, "top5": 0.999}, "artifacts": checked,
                  "passed": all(c["gate"]["passed"] for c in checked if c["gate"]["enforced"])}
    if diagnosis:
        validation["diagnosis"] = {
            "metric": "rmse/scale", "rounding_noise": 0.2887,
            "worst_layers": [{"tensor": _tensor(layer, name), "op": "CONV_2D", "scale": 0.015, "rmse/scale": 0.45 - 0.04 * i}
                             for i, layer in enumerate(LAYERS)],
            "selective": {"file": f"{name}_int8_keep3.tflite", "keep_float": 3, "top1": 0.8998, "top1_agreement": 0.9908,
                          "sqnr_db": 29.2, "full_int8_top1": 0.9004, "full_int8_agreement": 0.988,
                          "full_int8_sqnr_db": 28.2, "bytes": 370184, "full_int8_bytes": 316272}}
    (folder / "validation.json").write_text(json.dumps(validation, allow_nan=True))
    for target, (machine, threads, speed) in (benchmarks or {}).items():
        onnx = {"runtime": "onnxruntime", "runtime_version": "1.32.0", "delegate": None}
        litert = {"runtime": "litert-compiled", "runtime_version": "2.3.0", "delegate": "XNNPACK"}
        results = [{"model": a["file"], "bytes": a["bytes"], **(onnx if a["format"] == "onnx" else litert),
                    "threads": threads, "input_dtype": "float32", "runs": 200,
                    "latency_ms": {"p50": round(speed * a["bytes"] / 1e6 * (0.6 if a["precision"] == "int8" else 1.0), 4),
                                   "p90": 1.0, "p99": 1.1, "mean": 0.9, "std": 0.05, "min": 0.5, "max": 1.2},
                    "thermal": {"throttled": target.startswith("ssh") and a["format"] == "onnx"}} for a in artifacts]
        doc = {"target": target, "host": {"machine": machine, "cpu": "Cortex-A72" if machine == "aarch64" else "Xeon",
                                          "cores": 4 if machine == "aarch64" else 2, "os": "Debian 12"}, "results": results}
        (folder / f"benchmark-{target}.json").write_text(json.dumps(doc))
    return folder


SWEEP_KINDS = ("fp32.tflite", "fp16.tflite", "int8.tflite", "fp32.onnx")
PREFIX = {"v1": "mobilenet", "v2": "mobilenet_v2", "v3-small": "mobilenet_v3_small"}


def write_sweep_variant(out: Path, arch: str, alpha: float, side: int, kinds=SWEEP_KINDS, fails: tuple = ()) -> Path:
    """One variant of a sweep grid with plausible figures: accuracy rises with width and side, latency with
    Mult-Adds (the pipeline's own cost model), int8 is faster and slightly less accurate."""
    from mobilenet_edge.pipeline.cost.table import cost_table

    name = f"{PREFIX[arch]}_{alpha:.2f}_{side}"
    folder = out / TASK / name
    folder.mkdir(parents=True)
    table = cost_table(alpha, side, 10, arch)
    mult_adds, params = table.total_mult_adds, table.total_params
    float_top1 = 0.80 + 0.06 * alpha + 0.05 * side / 224 + {"v1": 0.0, "v2": 0.012, "v3-small": -0.01}[arch]
    (folder / "model.keras").write_bytes(b"k" * (params * 4 // 100))
    artifacts, checked, results = [], [], []
    for i, kind in enumerate(kinds):
        fmt, precision, per_channel, _, points, agree, kl, sqnr = KINDS[kind]
        points += 0.4 * ((alpha * 100 + side + 7 * i) % 5 - 2) / 2  # deterministic "noise"
        if kind in fails:
            points = 2.5
        size = params * (1 if precision == "int8" else 2 if precision == "fp16" else 4)
        entry = {"file": f"{name}_{kind}", "format": fmt, "precision": precision, "bytes": size,
                 "sha256": artifact_file(folder, f"{name}_{kind}"), "per_channel": per_channel}
        artifacts.append(entry)
        rule = "top1_drop_points <= 1.0" if precision == "int8" else "top1_agreement >= 0.995"
        passed = points <= 1.0 if precision == "int8" else True
        checked.append({"file": entry["file"], "format": fmt, "precision": precision, "per_channel": per_channel,
                        "sha256": entry["sha256"],
                        "metrics": {"top1": round(float_top1 - points / 100, 4), "top5": 0.998,
                                    "top1_drop_points": points, "top1_agreement": agree, "kl_mean": kl,
                                    "sqnr_db": sqnr, "max_abs_diff": 0.3, "mean_abs_diff": 0.002},
                        "gate": {"rule": rule, "value": points if precision == "int8" else agree, "passed": passed,
                                 "enforced": True}})
        speed = {"fp32": 1.0, "fp16": 1.05, "int8": 0.55}[precision] * (1.2 if fmt == "onnx" else 1.0)
        results.append({"model": entry["file"], "bytes": size, "threads": 2, "runs": 100,
                        "runtime": "onnxruntime" if fmt == "onnx" else "litert-compiled",
                        "latency_ms": {"p50": round(0.05 + speed * mult_adds / 2.5e8, 4), "p90": 1.0},
                        "thermal": {"throttled": False}})
    variant = {"arch": arch, "name": name, "alpha": alpha, "resolution": side, "task": TASK, "classes": 10}
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "variant": variant, "artifacts": artifacts}))
    (folder / "cost.json").write_text(json.dumps({"total_mult_adds": mult_adds, "total_params": params}))
    (folder / "validation.json").write_text(json.dumps({
        "variant": name, "task": TASK, "images": 1000, "labelled": True, "source": "fashion-mnist test split",
        "float": {"top1": round(float_top1, 4), "top5": 0.999}, "artifacts": checked,
        "passed": all(c["gate"]["passed"] for c in checked)}))
    (folder / "benchmark-local.json").write_text(json.dumps({
        "target": "local", "host": {"machine": "x86_64", "cpu": "Xeon", "cores": 2, "os": "Debian 12"},
        "results": results}))
    return folder


def write_sweep(out: Path, archs=("v1",), alphas=(0.25, 0.5, 0.75, 1.0), sides=(128, 160, 192, 224),
                failed: tuple = ()) -> Path:
    """A sweep's OUT: every variant of the grid and the OUT/sweep.json the sweep writes."""
    records = []
    for arch in archs:
        for alpha in alphas:
            for side in sides:
                name = f"{PREFIX[arch]}_{alpha:.2f}_{side}"
                error = "expected weights of MobileNet V1 alpha=0.5, received x.weights.h5 that does not fit" \
                    if name in failed else None
                if not error:
                    write_sweep_variant(out, arch, alpha, side, fails=("int8.tflite",) if (alpha, side) == (0.5, 160) else ())
                records.append({"variant": name, "arch": arch, "alpha": alpha, "resolution": side,
                                "folder": f"{TASK}/{name}", "ok": not error, "failed_step": error and "convert",
                                "error": error})
    (out / "sweep.json").write_text(json.dumps({
        "schema": 1, "task": TASK, "weights": "reference",
        "grid": {"archs": list(archs), "alphas": list(alphas), "resolutions": list(sides),
                 "formats": ["fp32", "fp16", "int8", "onnx"]},
        "validation": {"limit": 1000, "seed": 0}, "calibration": {"count": 200, "seed": 0, "folder": None},
        "benchmark": {"enabled": True, "target": "local", "threads": None, "runs": 100, "serial": True,
                      "note": "benchmarks ran one variant at a time", "cores": 2, "busy_cores_before": 0.1},
        "variants": records}))
    return out


def write_checkpoints(root: Path) -> Path:
    folder = root / TASK
    folder.mkdir(parents=True)
    by_res = {"32": 0.10, "48": 0.1053, "64": 0.901, "96": 0.2332, "128": 0.1037}
    (folder / "mobilenet_0.25_64.json").write_text(json.dumps(
        {"alpha": 0.25, "resolution": 64, "task": TASK, "classes": ["c"] * 10, "test_top1": 0.901,
         "accuracy_by_resolution": by_res}))
    (folder / "mobilenet_0.75_64.json").write_text(json.dumps({"alpha": 0.75, "resolution": 64, "test_top1": 0.9091}))
    return root


def build_out(root: Path) -> Path:
    """Two variants: 0.25 (diagnosis, two benchmark targets), 0.75 (ONNX int8 fails its gate, no benchmark)."""
    out = root / "out"
    write_variant(out, 0.25, 0.901, 1.0, 3_331_072, 210_160, diagnosis=True,
                  benchmarks={"local": ("x86_64", 2, 0.5), "ssh-raspberrypi.local": ("aarch64", 4, 4.0)})
    write_variant(out, 0.75, 0.9091, 8.4, 26_543_104, 1_832_938, drift={"int8.onnx": 1.8})
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    out = build_out(root)
    return out, write_report(out, checkpoints=write_checkpoints(root / "checkpoints"))


def records(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))["records"]


def test_writes_every_file(report):
    out, result = report
    for path in (result.markdown, result.html, result.summary, *result.plots):
        assert path.is_file() and path.stat().st_size > 0 and path.is_relative_to(out)
    assert {p.name for p in result.plots} == {"accuracy_vs_mult_adds.png", "accuracy_vs_latency.png",
                                              "size_per_format.png", "checkpoint_resolution.png"}
    assert not list(out.rglob(".*-*"))  # no temporary files left behind


def test_summary_has_one_record_per_artifact(report):
    out, _ = report
    rows = records(out)
    assert len(rows) == 2 * (1 + len(KINDS))
    keys = {"variant", "task", "alpha", "resolution", "format", "precision", "per_channel", "bytes", "mult_adds",
            "params", "top1", "top5", "top1_drop_points", "top1_agreement", "kl_mean", "sqnr_db", "max_abs_diff",
            "gate_passed", "latency_p50_ms", "latency"}
    assert all(keys <= set(r) for r in rows)
    by_file = {r["file"]: r for r in rows}
    keras = [r for r in rows if r["format"] == "keras"]
    assert [r["top1"] for r in keras] == [0.901, 0.9091] and keras[0]["bytes"] == 950_000
    per_tensor = by_file["mobilenet_0.25_64_int8_per_tensor.tflite"]
    assert per_tensor["label"] == "TFLite int8 per-tensor" and per_tensor["per_channel"] is False
    assert by_file["mobilenet_0.25_64_int8_keep3.tflite"]["label"] == "TFLite int8, 3 layers float"
    int8 = by_file["mobilenet_0.25_64_int8.tflite"]
    assert int8["mult_adds"] == 3_331_072 and int8["params"] == 210_160 and int8["gate_passed"] is True
    assert int8["latency_p50_ms"] == {LOCAL: pytest.approx(0.0949, abs=1e-4), PI: pytest.approx(0.7590, abs=1e-4)}
    assert {(x["target"], x["machine"], x["threads"], x["runtime"]) for x in int8["latency"]} == {
        ("local", "x86_64", 2, "litert-compiled"), ("ssh-raspberrypi.local", "aarch64", 4, "litert-compiled")}
    assert by_file["mobilenet_0.25_64_fp32.onnx"]["sqnr_db"] is None  # infinite: strict JSON has no Infinity
    failing = by_file["mobilenet_0.75_64_int8.onnx"]
    assert failing["gate_passed"] is False and failing["top1_drop_points"] == 1.8 and failing["latency_p50_ms"] == {}


def test_ship_choices(report):
    out, _ = report
    ship = {c["variant"]: c for c in json.loads((out / "summary.json").read_text())["ship"]}
    # the per-tensor file is smaller but its gate is informational; dynamic range is the smallest that counts
    assert ship["mobilenet_0.25_64"]["smallest"] == "mobilenet_0.25_64_dynamic.tflite"
    assert set(ship["mobilenet_0.25_64"]["fastest"]) == {LOCAL, PI}
    assert ship["mobilenet_0.75_64"]["fastest"] == {}
    assert ship["mobilenet_0.75_64"]["failing"] == ["mobilenet_0.75_64_int8.onnx"]


def test_plots_are_images(report):
    _, result = report
    for path in result.plots:
        image = imread(path)
        assert image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[0] >= 400 and image.shape[1] >= 700, path


def test_html_is_self_contained(report):
    _, result = report
    page = result.html.read_text()
    assert page.count("data:image/png;base64,") == len(result.plots) and "<style>" in page
    assert not re.search(r"<(link|script)\b", page) and "src='plots/" not in page  # few variants: no sorting script
    for text in ("<table", "Which artifact to ship", "TFLite int8 per-tensor", LOCAL, PI, "FAIL: drop 1.8 &gt; 1.0",
                 "Reference checkpoints", "conv_pw_7", "int8 diagnosis"):
        assert text in page, text


def test_markdown_explains_each_metric(report):
    _, result = report
    md = result.markdown.read_text()
    for name, text in METRICS:
        assert f"- **{name}**: {text}" in md or name == "gate"
    assert "- **gate**: the validation rule for the artifact's precision (fp32: agreement ≥ 99.9 %; fp16: agreement " \
           "≥ 99.5 %; dynamic range: drop ≤ 1 pts; int8: drop ≤ 1 pts)" in md
    assert "KL(float ‖ artifact)" in md and "> 20 dB" in md and "top-1 equals the float model's" in md
    table = [line for line in md.splitlines() if line.startswith("| TFLite int8 per-tensor")]
    assert len(table) == 2 and "info: pass" in table[0]
    header = next(line for line in md.splitlines() if line.startswith("| artifact"))
    assert f"p50 ms {LOCAL}" in header and f"p50 ms {PI}" in header
    throttled = [line for line in md.splitlines() if line.startswith("| ONNX fp32")][0]
    assert throttled.endswith("* |") and "∞" in throttled  # throttled on the Pi; SQNR of identical outputs
    assert "Keeping the 3 worst layers in float" in md and "size 0.370 MB vs 0.316 MB (+17 %)" in md
    assert "| fashion-mnist | 0.25 | 64 px | 90.10 | 10.00 | 10.53 | 90.10 | 23.32 | 10.37 |" in md
    assert "![" in md and "(plots/accuracy_vs_mult_adds.png)" in md


def test_missing_and_broken_files_show_a_dash(tmp_path):
    out = tmp_path / "out"
    folder = write_variant(out, 0.5, 0.905, 3.0, 12_000_000, 800_000, kinds=("fp32.tflite", "int8.tflite"),
                           benchmarks={"local": ("x86_64", 1, 0.5)})
    (folder / "validation.json").unlink()
    (folder / "cost.json").unlink()
    (folder / "benchmark-adb-emulator.json").write_text("{not json")
    result = write_report(out, checkpoints=None)
    md = result.markdown.read_text()
    assert "not validated" in md and "| TFLite fp32 | 2.634 | — | — | — |" in md
    assert "## Problems" in md and "benchmark-adb-emulator.json" in md
    assert {p.name for p in result.plots} == {"size_per_format.png"}  # no accuracy without validation
    rows = records(out)
    assert rows[1]["top1"] is None and rows[1]["latency_p50_ms"] == {"local x86_64 1 thr": pytest.approx(1.317, abs=0.001)}


def test_empty_out_dir_is_an_error(tmp_path):
    with pytest.raises(PipelineError, match="expected variant folders"):
        write_report(tmp_path)


# --- a sweep's report: many variants, several architectures, the Pareto fronts -------------------------------

@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory):
    out = write_sweep(tmp_path_factory.mktemp("sweep") / "out", archs=("v1", "v2", "v3-small"),
                      alphas=(0.5, 1.0), sides=(128, 160, 192, 224), failed=("mobilenet_0.50_128",))
    return out, write_report(out, checkpoints=None)


def test_pareto_front_keeps_only_what_nothing_beats():
    from mobilenet_edge.pipeline.report import pareto_front

    points = [(10, 0.80, "a"), (20, 0.85, "b"), (20, 0.84, "b2"), (30, 0.83, "c"), (40, 0.90, "d"), (5, 0.70, "e"),
              (40, 0.90, "d2")]
    assert pareto_front(points) == ["e", "a", "b", "d"]
    assert pareto_front([]) == []


def test_sweep_summary_fronts_and_arch(sweep_report):
    out, _ = sweep_report
    summary = json.loads((out / "summary.json").read_text())
    assert {v["arch"] for v in summary["variants"]} == {"v1", "v2", "v3-small"}
    labels = {v["variant"]: v["label"] for v in summary["variants"]}
    assert labels["mobilenet_v2_1.00_160"] == "V2 1.00 / 160 px" and labels["mobilenet_v3_small_0.50_128"] == \
        "V3-Small 0.50 / 128 px"
    assert all(r["arch"] for r in summary["records"])
    assert set(summary["pareto"]) == {"mult_adds", LOCAL}
    candidates = [r for r in summary["records"] if not r["reference"] and r["gate_passed"]]
    for name, cost in (("mult_adds", lambda r: r["mult_adds"]), (LOCAL, lambda r: r["latency_p50_ms"][LOCAL])):
        on = [r for r in candidates if name in r["pareto"]]
        assert [(r["task"], r["variant"], r["file"]) for r in on] and len(on) == len(summary["pareto"][name])
        for r in candidates:  # on the front when no other passing artifact is as cheap and at least as accurate
            point = (cost(r), r["top1"])
            dominated = any(cost(o) <= point[0] and o["top1"] >= point[1] and (cost(o), o["top1"]) != point
                            for o in candidates)
            on_front = any((cost(o), o["top1"]) == point and name in o["pareto"] for o in candidates)  # or its twin
            assert not (dominated and name in r["pareto"]) and (dominated or on_front), r["file"]
    failing = next(r for r in summary["records"] if r["file"] == "mobilenet_0.50_160_int8.tflite")
    assert failing["gate_passed"] is False and failing["pareto"] == []  # a failing artifact is never recommended
    assert summary["sweep"]["variants"][0]["variant"] == "mobilenet_0.50_128" and not summary["sweep"]["variants"][0]["ok"]


def test_sweep_page_is_sortable_and_says_how_latency_was_measured(sweep_report):
    out, result = sweep_report
    page = result.html.read_text()
    assert "<table class=sortable>" in page and page.count("<script>") == 1
    assert not re.search(r"<(link|script)\b[^>]*\bsrc=", page)  # inline only: one file, offline
    for text in ("Pareto front: the artifacts to choose from", "no other passing artifact beats on both axes",
                 "one variant at a time", "FAILED mobilenet_0.50_128 at convert", "V3-Small 1.00 / 224 px",
                 "variant(s) of the sweep failed", "other programs kept 0.1 of 2 cores busy just before"):
        assert text in page, text
    assert "inflated" not in page  # 0.1 cores is not a busy machine
    md = result.markdown.read_text()
    header = next(line for line in md.splitlines() if line.startswith("| arch | α | px | artifact"))
    assert header.endswith("| Pareto front |") and f"p50 ms {LOCAL}" in header
    assert "| V2 | 1.00 | 224 | ONNX fp32 |" in md


def test_sweep_plots_stay_readable(sweep_report):
    _, result = sweep_report
    for path in result.plots:
        image = imread(path)
        assert image.shape[0] >= 600 and image.shape[1] >= 1000, path  # room for 24 variants x 4 formats


def test_report_is_rewritten_only_when_an_input_changes(tmp_path):
    from mobilenet_edge.pipeline.report import report_is_current

    out = write_sweep(tmp_path / "out", alphas=(0.5,), sides=(128, 160))
    assert not report_is_current(out)
    write_report(out)
    assert report_is_current(out)
    validation = out / TASK / "mobilenet_0.50_128" / "validation.json"
    validation.write_text(validation.read_text().replace('"images": 1000', '"images": 999'))
    assert not report_is_current(out)
