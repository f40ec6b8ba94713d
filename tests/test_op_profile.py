"""`make profile` (benchmarks/runtimes/_op_profile.py, targets/op_times.py): every op of a .tflite cut out into its own model
computes what it computes inside the whole model; the per-op record adds up by construction; ONNX Runtime's
profiler and (when installed) OpenVINO's counts give one row per node; the CLI writes profile-local.json and the
report shows it. No timing is asserted (the machine is shared): only the structure and the arithmetic."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli


def _files(tiny_export, suffix):
    return {a.precision: a.path for a in tiny_export.artifacts if a.path.suffix == suffix and a.per_channel is not False}


def test_cut_op_computes_what_it_computes_in_the_whole_model(tiny_export):
    from ai_edge_litert import schema_py_generated as tfl
    from ai_edge_litert.interpreter import Interpreter

    from mobilenet_edge.benchmarks.runtimes import _op_profile as op_profile

    for precision in ("int8", "fp16"):
        path = _files(tiny_export, ".tflite")[precision]
        data = path.read_bytes()
        flat = tfl.ModelT.InitFromPackedBuf(data, 0)
        whole = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
        whole.allocate_tensors()
        inp = whole.get_input_details()[0]
        whole.set_tensor(inp["index"], op_profile.random_feed(inp["shape"], inp["dtype"]))
        whole.invoke()
        graph, static = flat.subgraphs[0], op_profile.static_ops(flat)
        checked = 0
        for i, op in enumerate(graph.operators):
            if i in static or checked >= 6:
                continue
            part = Interpreter(model_content=op_profile.cut(flat, [i]), experimental_preserve_all_tensors=True)
            part.allocate_tensors()
            for detail in part.get_input_details():
                source = next(t for t in op.inputs if graph.tensors[t].name.decode() == detail["name"])
                part.set_tensor(detail["index"], whole.get_tensor(source))
            part.invoke()
            out = part.get_output_details()[0]
            expected = whole.get_tensor(next(t for t in op.outputs if graph.tensors[t].name.decode() == out["name"]))
            np.testing.assert_allclose(part.get_tensor(out["index"]).astype(np.float32), expected.astype(np.float32),
                                       atol=1e-5, err_msg=f"{precision} op {i}")
            checked += 1
        assert checked == 6


def test_litert_record_adds_up(tiny_export):
    from mobilenet_edge.benchmarks.runtimes import _op_profile as op_profile

    record = op_profile.profile(str(_files(tiny_export, ".tflite")["fp16"]), "litert", 1)
    assert record["runtime"] == "litert" and record["folded_ops"] > 0  # fp16 weights' DEQUANTIZE go with their op
    assert record["delegation_differs"] == []
    parts = sum(layer["ms"] for layer in record["layers"]) + record["invoke_ms"]
    assert record["sum_ms"] == pytest.approx(parts, abs=1e-3)
    assert record["residual_ms"] == pytest.approx(record["whole_ms"] - record["sum_ms"], abs=1e-3)
    assert sum(o["count"] for o in record["by_op"]) == len(record["layers"])
    assert {layer["block"] for layer in record["layers"]} == {b["block"] for b in record["blocks"]}


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_onnx_profilers_give_one_row_per_node(tiny_export, runtime):
    pytest.importorskip(runtime)
    from mobilenet_edge.benchmarks.runtimes import _op_profile as op_profile

    record = op_profile.profile(str(_files(tiny_export, ".onnx")["int8"]), runtime, 1)
    assert record["layers"] and all(layer["ms"] >= 0 for layer in record["layers"])
    assert any("Conv" in layer["op"] for layer in record["layers"]), record["by_op"]
    assert record["whole_ms"] > 0


def test_cli_profile_writes_the_record_and_the_report_shows_it(tiny_export, tmp_path):
    source = Path(tiny_export.variant_dir)
    out = tmp_path / "out"
    folder = out / source.parent.name / source.name
    shutil.copytree(source, folder)
    proc = run_cli("profile", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--weights", "reference",
                   "--out", out, "--threads", "1", "--runtime", "litert", "--top", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((folder / "profile-local.json").read_text())
    assert doc["threads"] == 1 and doc["cpu_flags"] is not None
    assert {r["file"] for r in doc["results"]} == {p.name for p in folder.glob("*.tflite")}
    assert "whole" in proc.stdout and "parts" in proc.stdout
    assert run_cli("report", "--out", out).returncode == 0
    assert "## Where the time goes" in (out / "report.md").read_text()
