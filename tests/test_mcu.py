"""`make mcu`: TFLite Micro's file check, the arena search, the interpreter's failures as one line, the budget,
Vela and the C source — on the committed α 0.25 checkpoint at 32 px (real conversions, TFLite Micro and Vela)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import error_line, run_cli
from mobilenet_edge.pipeline.config import McuBudget, McuConfig, Variant, parse_size
from mobilenet_edge.pipeline.errors import PipelineError, ToolError
from mobilenet_edge.targets.mcu import tflm


@pytest.fixture(scope="session")
def mcu_files(tmp_path_factory):
    """The same tiny model as int8-I/O (what TFLite Micro takes) and uint8-I/O (the Android file) .tflite."""
    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline import build
    from mobilenet_edge.pipeline.config import QuantConfig
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes

    folder = tmp_path_factory.mktemp("mcu-files")
    variant = Variant(0.25, 32, "fashion-mnist", "reference")
    task = resolve_task(variant.task)
    model = build.build_model(variant, task.num_classes)
    calib = calibration_set(task, 32, 16, 0, progress=False)
    files = {}
    for io in ("int8", "uint8"):
        files[io] = folder / f"tiny_{io}.tflite"
        files[io].write_bytes(tflite_bytes(model, "int8", calib, QuantConfig(io_dtype=io, num_samples=16)))
    return files


@pytest.fixture(scope="session")
def gelu_file(tmp_path_factory):
    """A full-int8, int8-I/O model with GELU, which LiteRT runs and TFLite Micro has no kernel for."""
    import keras
    import tensorflow as tf

    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Activation("gelu")(keras.layers.Conv2D(4, 3)(inp))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.standard_normal((1, 8, 8, 3)).astype(np.float32)] for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path_factory.mktemp("gelu") / "gelu_int8.tflite"
    path.write_bytes(converter.convert())
    return path


def test_sizes_parse_strictly():
    assert parse_size("256K", "SRAM") == 262144 and parse_size("1M", "FLASH") == 1048576
    assert parse_size("1.5M", "FLASH") == 1572864 and parse_size("300000", "SRAM") == 300000
    for bad in ("0", "-1K", "12Q", "1.5", "K", ""):
        with pytest.raises(PipelineError, match="expected SRAM"):
            parse_size(bad, "SRAM")
    with pytest.raises(PipelineError, match="expected NPU to be one of"):
        McuBudget.parse(npu="ethos-u99")


def test_tflm_ops_come_from_the_installed_package():
    version, ops = tflm.tflm_ops()
    assert version.startswith("0.dev")  # a nightly: requirements-mcu.lock pins one
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "SOFTMAX", "RESHAPE", "HARD_SWISH"} <= ops
    assert "GELU" not in ops and "ETHOSU" not in ops  # the custom op is not a builtin


def test_arena_search_finds_the_smallest_arena(mcu_files):
    arena = tflm.find_arena(mcu_files["int8"])
    assert arena.bytes % tflm.ALIGN == 0 and arena.bytes > 0
    assert tflm._probe(mcu_files["int8"], arena.bytes, crash_ok=False)[0]
    assert not tflm._probe(mcu_files["int8"], arena.bytes - tflm.ALIGN, crash_ok=True)[0]


def test_interpreter_crash_is_one_line_and_the_caller_survives(mcu_files):
    """A 16-byte arena kills TFLite Micro's process (SIGSEGV): here it is one ToolError line."""
    with pytest.raises(ToolError) as caught:
        tflm._child("probe", str(mcu_files["int8"]), "16", what="allocate the model in 16 bytes")
    assert "\n" not in str(caught.value) and "process died" in str(caught.value)


def test_uint8_io_is_refused_and_its_failure_in_the_interpreter_is_one_line(mcu_files):
    check = tflm.check_file(mcu_files["uint8"])
    assert check.ops["QUANTIZE"] == 2 and any("uint8 input" in p for p in check.problems)
    with pytest.raises(PipelineError, match="int8 I/O.*uint8 input and uint8 output"):
        tflm.require_tflm_file(mcu_files["uint8"])
    # Given to TFLite Micro anyway (int8 pixels into its uint8 input), its failure ends the child, not us.
    with pytest.raises(ToolError) as caught:
        tflm.run_tflm(mcu_files["uint8"], 1 << 20, np.zeros((2, 32, 32, 3), np.int8))
    assert "\n" not in str(caught.value) and "UINT8" in str(caught.value)


def test_a_model_with_an_op_tflm_lacks_is_refused_naming_it(gelu_file):
    with pytest.raises(PipelineError, match="has no kernel for: GELU"):
        tflm.require_tflm_file(gelu_file)


@pytest.mark.slow
def test_mcu_with_an_npu_fits_and_writes_vela_and_c_source(tmp_path):
    from mobilenet_edge.pipeline.mcu import mcu_stage
    from mobilenet_edge.pipeline.report.mcu import best_fit, top1_vs_sram
    from mobilenet_edge.targets.mcu.csource import read_c_array

    result = mcu_stage(McuConfig(Variant(0.25, 32, "fashion-mnist", "reference"),
                                 McuBudget.parse("256K", "1M", "ethos-u55-128"), tmp_path, num_samples=16, images=50))
    r = result.record
    assert result.fits and r["accuracy"]["within_one_step"] and r["accuracy"]["tflm_top1"] > 0.5
    assert r["accuracy"]["vs_litert_reference"]["max_step_difference"] <= 1
    assert r["npu"]["cpu_ops"] == 0 and r["npu"]["npu_ops"] > 0 and r["npu"]["inference_ms"] > 0
    assert r["peak_sram_bytes"] == r["npu"]["sram_bytes"] and r["npu"]["layers"]
    deployed = result.folder / r["deployed_file"]
    source = result.folder / r["c_source"]["source"]
    assert read_c_array(source) == deployed.read_bytes()
    assert "alignas(16) const unsigned char" in source.read_text()
    assert (result.folder / r["c_source"]["header"]).read_text().count("extern const") == 2
    summary = {"mcu": [dict(r, label="tiny")]}
    assert best_fit(summary["mcu"])["variant"] == r["variant"] and top1_vs_sram(summary) is not None


@pytest.mark.slow
def test_over_budget_is_refused_with_the_figures(tmp_path):
    proc = run_cli("mcu", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--sram", "16K",
                   "--limit", "20", "--n", "16", "--out", tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "does NOT fit: peak SRAM" in proc.stdout and "> SRAM 16.0 KiB (by" in proc.stdout
    assert not list(tmp_path.rglob("*.cc"))
    bad = run_cli("mcu", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--sram", "16Q", "--out", tmp_path)
    assert bad.returncode == 2 and "expected SRAM as a size" in error_line(bad)


def test_the_microcontroller_is_a_target_kind_that_is_not_timed(tmp_path):
    from mobilenet_edge.targets.registry import parse_targets, resolve_target

    target = resolve_target("mcu")
    assert target.kind.name == "mcu" and target.runtimes == ("tflite-micro",) and not target.is_local
    assert target.probe().builtin_ops > 50
    assert [t.kind.name for t in parse_targets(["local", "mcu"])] == ["local", "mcu"]
    with pytest.raises(PipelineError, match="measured by `make mcu`") as caught:
        target.bench(tmp_path)
    assert "\n" not in str(caught.value)
    with pytest.raises(PipelineError, match="expected `mcu` alone"):
        resolve_target("mcu:board")
