"""Threads as an axis (THREADS="1 2 4"): every artifact timed at each count, the report's scaling table and plot."""
from __future__ import annotations

import argparse
import json
import shutil

import pytest

from mobilenet_edge.benchmarks.runtimes import also_measured
from mobilenet_edge.calibration.preprocessing import Preprocessing
from mobilenet_edge.pipeline.artifacts import sha256_file

from mobilenet_edge.pipeline.cli_args import thread_counts as _thread_counts
from mobilenet_edge.pipeline.report import write_report
from mobilenet_edge.pipeline.report.threads import scaling
from mobilenet_edge.targets.local import bench_local
from mobilenet_edge.targets.plan import thread_counts
from tests_targets import VARIANT, tiny_variant


def _record(file, *latencies):
    return {"task": "t", "variant": "v", "file": file, "label": file,
            "latency": [{"target": t, "machine": "x86_64", "threads": n, "p50_ms": ms, "throttled": thr}
                        for t, n, ms, thr in latencies]}


def test_scaling_rows_take_the_faster_runtime_per_count_and_name_where_more_cores_stop_paying():
    records = [_record("a.tflite", ("local", 1, 4.0, False), ("local", 2, 2.5, False), ("local", 2, 2.0, False),
                       ("local", 4, 2.2, True), ("ssh-pi", 4, 9.0, False)),
               _record("b.onnx", ("local", 2, 1.0, False)),  # one count only: no scaling row
               {"task": "t", "variant": "v", "file": "model.keras", "label": "Keras", "latency": []}]
    rows = scaling(records)
    assert len(rows) == 1
    row = rows[0]
    assert row["target"] == "local" and row["p50_ms"] == {1: 4.0, 2: 2.0, 4: 2.2}
    assert row["best_threads"] == 2 and row["speedup"] == pytest.approx(4.0 / 2.2) and row["throttled"] == [4]


def test_thread_counts_parse_and_check():
    assert _thread_counts("4") == 4 and _thread_counts("1 2 4") == (1, 2, 4) and _thread_counts("") is None
    assert thread_counts(None) == [None] and thread_counts(3) == [3] and thread_counts((1, 2, 1)) == [1, 2]
    # argparse turns these into one line: "expected --threads to be a whole number, received …" (test_one_line_errors)
    with pytest.raises(argparse.ArgumentTypeError, match=r"invalid int value: '1 0' \(each count >= 1\)"):
        _thread_counts("1 0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"invalid int value: '1 two'"):
        _thread_counts("1 two")


def test_bench_at_two_thread_counts_writes_the_scaling_table_and_plot(tmp_path):
    out = tmp_path / "out"
    folder = out / "fashion-mnist" / VARIANT
    shutil.copytree(tiny_variant(), folder)
    for name in ("_dynamic.tflite", "_fp16.tflite"):  # fewer files: the test is about the axis, not the formats
        (folder / f"{VARIANT}{name}").unlink()
    entries = [{"file": p.name, "format": p.suffix[1:], "precision": p.stem.rsplit("_", 1)[1],
                "bytes": p.stat().st_size, "sha256": sha256_file(p)}  # the report counts only verified files
               for p in sorted(folder.iterdir()) if p.suffix in (".tflite", ".onnx")]
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "variant": {"name": VARIANT, "task": "fashion-mnist"},
                                                      "preprocessing": Preprocessing(resolution=32).to_dict(),
                                                      "artifacts": entries}))
    path = bench_local(folder, threads=(1, 2), runs=3)
    results = [r for r in json.loads(path.read_text())["results"] if r["runtime"] not in also_measured()]
    files = sorted(p.name for p in folder.glob("*.tflite")) + sorted(p.name for p in folder.glob("*.onnx"))
    assert sorted((r["model"], r["threads"]) for r in results) == sorted((f, t) for f in files for t in (1, 2))
    report = write_report(out, checkpoints=None)
    summary = json.loads(report.summary.read_text())
    assert sorted(r["file"] for r in summary["thread_scaling"]) == sorted(files)
    assert all(list(r["p50_ms"]) == ["1", "2"] for r in summary["thread_scaling"])  # JSON keys
    markdown = report.markdown.read_text()
    assert "## Thread scaling" in markdown and "| artifact | 1 thr | 2 thr | speed-up | best |" in markdown
    assert (out / "plots" / "thread_scaling.png").stat().st_size > 1000
