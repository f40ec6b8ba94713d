"""ARCH=v1|v2|v3-small|v3-large|v4-conv-s|v4-conv-m through build, preprocessing contract, conversion and validation."""
import json

import numpy as np
import pytest

from conftest import error_line, run_cli
from mobilenet_edge.pipeline import build
from mobilenet_edge.pipeline.archs import ARCHS, arch_of_name, get_arch
from mobilenet_edge.pipeline.config import Variant
from mobilenet_edge.pipeline.errors import PipelineError


@pytest.mark.parametrize("arch, name", [("v1", "mobilenet_0.75_64"), ("v2", "mobilenet_v2_0.75_64"),
                                        ("v3-small", "mobilenet_v3_small_0.75_64"),
                                        ("v3-large", "mobilenet_v3_large_0.75_64")])
def test_variant_names_per_arch_and_back(arch, name):
    variant = Variant(0.75, 64, "fashion-mnist", "random", arch)
    assert variant.name == name
    assert arch_of_name(name).key == arch


@pytest.mark.parametrize("arch, alpha, ok", [("v2", 1.4, True), ("v2", 1.5, False), ("v1", 1.4, False),
                                             ("v3-small", 1.0, True), ("v3-large", 1.2, False)])
def test_each_arch_has_its_own_alpha_range(arch, alpha, ok):
    if ok:
        assert Variant(alpha, 64, "fashion-mnist", "random", arch).alpha == alpha
    else:
        with pytest.raises(PipelineError, match=rf"expected alpha in \(0, {ARCHS[arch].max_alpha:g}\], "
                                                rf"received alpha={alpha} \(ARCH={arch}\)"):
            Variant(alpha, 64, "fashion-mnist", "random", arch)


def test_unknown_arch():
    with pytest.raises(PipelineError, match=f"expected ARCH to be one of {', '.join(ARCHS)}, received ARCH='v9'"):
        Variant(1.0, 224, arch="v9")


@pytest.mark.parametrize("arch, classes_layer", [("v2", "predictions"), ("v3-small", "predictions"),
                                                 ("v3-large", "predictions")])
def test_build_each_arch_at_any_side(arch, classes_layer):
    model = build.build_model(Variant(0.5, 48, "fashion-mnist", "random", arch), 10)
    assert model.input_shape == (None, 48, 48, 3) and model.output_shape == (None, 10)
    layers = [l.__class__.__name__ for l in model.layers]
    # V3 rescales 0..255 pixels itself; V1/V2 do not.
    assert ("Rescaling" in layers) == arch.startswith("v3")


def test_imagenet_weights_per_arch_are_checked_before_any_download():
    with pytest.raises(PipelineError, match=r"alpha in \(0.35, 0.5, 0.75, 1.0, 1.3, 1.4\) and RES in "
                                            r"\(96, 128, 160, 192, 224\) for MobileNet V2"):
        build.build_model(Variant(0.25, 224, "imagenet", "imagenet", "v2"), 1000)
    with pytest.raises(PipelineError, match=r"expected alpha in \(0.75, 1.0\) for MobileNet V3-Small"):
        build.build_model(Variant(0.5, 224, "imagenet", "imagenet", "v3-small"), 1000)


@pytest.mark.parametrize("arch, mean, std, value_range", [("v1", 127.5, 127.5, [-1.0, 1.0]),
                                                          ("v2", 127.5, 127.5, [-1.0, 1.0]),
                                                          ("v3-small", 0.0, 1.0, [0.0, 255.0])])
def test_preprocessing_contract_follows_the_arch(arch, mean, std, value_range):
    from mobilenet_edge.calibration.tasks import resolve_task

    contract = resolve_task("fashion-mnist").preprocessing(64, arch).to_dict()
    assert contract["mean"] == [mean] * 3 and contract["std"] == [std] * 3
    assert contract["output_range"] == value_range


@pytest.fixture(scope="module")
def v3_export(tmp_path_factory):
    """V3-Small with the committed reference checkpoint at 32 px: TFLite fp32 + int8, ONNX fp32, validated."""
    from mobilenet_edge.pipeline.config import ExportConfig, QuantConfig
    from mobilenet_edge.pipeline.recipe import export_variant
    from mobilenet_edge.pipeline.config import RecipeConfig
    from mobilenet_edge.pipeline.config import ValidationConfig

    out = tmp_path_factory.mktemp("v3")
    cfg = RecipeConfig(variant=Variant(1.0, 32, "fashion-mnist", "reference", "v3-small"),
                       export=ExportConfig(formats=("fp32", "int8", "onnx"), out=out),
                       quant=QuantConfig(num_samples=32), validation=ValidationConfig(limit=300))
    return export_variant(cfg)


@pytest.mark.slow
def test_v3_contract_reaches_manifest_metadata_and_int8_input(v3_export):
    from mobilenet_edge.pipeline.convert.metadata import read_metadata

    manifest = json.loads(v3_export.manifest.read_text())
    assert manifest["variant"]["arch"] == "v3-small"
    assert manifest["preprocessing"]["mean"] == [0.0] * 3 and manifest["preprocessing"]["output_range"] == [0.0, 255.0]
    int8 = next(a for a in manifest["artifacts"] if a["precision"] == "int8")
    # 0..255 model input: the uint8 input takes raw pixels with scale 1 and zero point 0.
    assert int8["inputs"][0]["dtype"] == "uint8"
    assert int8["inputs"][0]["scale"] == pytest.approx(1.0) and int8["inputs"][0]["zero_point"] == 0
    meta = read_metadata((v3_export.variant_dir / int8["file"]).read_bytes())
    assert meta["inputs"][0]["normalization"] == {"mean": [0.0] * 3, "std": [1.0] * 3}
    assert "MobileNet V3-Small" in meta["description"]
    cost = json.loads((v3_export.variant_dir / "cost.json").read_text())
    assert cost["arch"] == "v3-small"


@pytest.mark.slow
def test_v3_validation_on_real_labels(v3_export):
    """Trained V3-Small: the float model is far above chance and every artifact stays within its gate."""
    data = json.loads(v3_export.validation.path.read_text())
    assert data["float"]["top1"] > 0.7, data["float"]
    rows = {r["precision"] + "/" + r["format"]: r for r in data["artifacts"]}
    assert rows["fp32/onnx"]["metrics"]["top1_agreement"] >= 0.999
    assert rows["fp32/tflite"]["metrics"]["top1_agreement"] >= 0.999
    assert abs(rows["int8/tflite"]["metrics"]["top1_drop_points"]) < 5, rows["int8/tflite"]["metrics"]
    # V3-Small's full-int8 file may agree with float on fewer than 97 % of the images (issue 13: BUDGET is the
    # remedy); then that agreement check is the only one failing — every other gate holds.
    for row in data["artifacts"]:
        failing = [c["rule"].split()[0] for c in row["gate"]["checks"] if not c["passed"]]
        assert failing in ([], ["top1_agreement"] if row["precision"] == "int8" else []), row


@pytest.mark.slow
def test_v3_onnx_keeps_no_layout_transposes(v3_export):
    """tf2onnx's Transpose pass must survive V3's scalar Add (see convert_onnx._optimizers)."""
    import onnx

    onnx_file = next(v3_export.variant_dir.glob("*_fp32.onnx"))
    ops = [n.op_type for n in onnx.load(onnx_file).graph.node]
    assert ops.count("Transpose") <= 2, ops.count("Transpose")


def test_cli_arch_errors_are_one_line(tmp_path):
    proc = run_cli("export", "--arch", "v9", "--task", "fashion-mnist", "--weights", "random", "--out", tmp_path)
    assert proc.returncode == 2 and "expected ARCH to be one of" in error_line(proc)
    proc = run_cli("export", "--arch", "v2", "--alpha", "1.6", "--task", "fashion-mnist", "--weights", "random",
                   "--out", tmp_path)
    assert proc.returncode == 2 and "expected alpha in (0, 1.4], received alpha='1.6' (ARCH=v2)" in error_line(proc)
    assert not any(tmp_path.rglob("*.tflite"))


def test_reference_checkpoints_cover_the_family():
    """V1 at four widths, V2 1.0, V3-Small 1.0 and V4 Conv-S / Conv-M 1.0, each with its per-side BatchNorm statistics."""
    records = build.reference_records("fashion-mnist")
    have = {(r["arch"], r["alpha"]) for r in records}
    assert {("v1", 0.25), ("v1", 0.5), ("v1", 0.75), ("v1", 1.0), ("v2", 1.0), ("v3-small", 1.0),
            ("v4-conv-s", 1.0), ("v4-conv-m", 1.0)} <= have
    for r in records:
        assert r["test_top1"] > 0.85, (r["arch"], r["alpha"], r["test_top1"])
        sides = build.trained_resolutions(r)
        assert r["resolution"] in sides and all(r["accuracy_by_resolution"][str(s)] > 0.75 for s in sides)  # chance: 0.1
        with np.load(build.batchnorm_file(r["checkpoint"])) as stats:
            assert {f"{s}/0/mean" for s in sides} <= set(stats.files)


def test_batchnorm_statistics_follow_the_side():
    """The same checkpoint built at two trained sides gets different BatchNorm statistics, equal weights."""
    small = build.build_model(Variant(0.25, 32, "fashion-mnist", "reference"), 10)
    large = build.build_model(Variant(0.25, 64, "fashion-mnist", "reference"), 10)
    bn_small, bn_large = build.batchnorm_layers(small)[0], build.batchnorm_layers(large)[0]
    assert not np.allclose(bn_small.moving_mean, bn_large.moving_mean)
    np.testing.assert_array_equal(small.get_layer("conv1").kernel, large.get_layer("conv1").kernel)
    assert get_arch("v1").variant_name(0.25, 32) == "mobilenet_0.25_32"


# --- every registry entry, at a tiny size: builds, costs and converts (issue 22: one test iterates them all) ---

def smallest_alpha(arch) -> float:
    return min(0.25, arch.max_alpha)


@pytest.fixture(scope="module", params=list(ARCHS))
def tiny_model(request):
    arch = ARCHS[request.param]
    model = build.build_model(Variant(smallest_alpha(arch), 32, "fashion-mnist", "random", arch.key), 10)
    return arch, model


def test_every_entry_is_complete(tiny_model):
    arch, _ = tiny_model
    assert arch.title and arch.short_title and arch.paper and arch.marker and arch.prefix.startswith("mobilenet")
    assert arch.std > 0 and arch.max_alpha > 0 and callable(arch.factory) and callable(arch.cost)
    assert arch_of_name(arch.variant_name(0.5, 64)) is arch
    assert len({a.marker for a in ARCHS.values()}) == len(ARCHS)


def test_every_entry_builds_and_its_cost_counts_its_keras_model(tiny_model):
    """The cost table's Keras parameter count is exactly the built model's, so the rows describe that model."""
    from mobilenet_edge.pipeline.cost.table import cost_table

    arch, model = tiny_model
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    report = cost_table(smallest_alpha(arch), 32, 10, arch=arch.key)
    assert report.keras_params == model.count_params()
    assert report.total_mult_adds > 0 and "Total" in report.format()
    named = [row.keras_layer for row in report.layers if row.keras_layer and row.params]
    have = {layer.name for layer in model.layers}
    assert not arch.key.startswith("v4") or set(named) <= have, set(named) - have


def test_the_largest_activation_stays_within_the_memory_estimate(tiny_model):
    """pipeline/limits.py bounds one image's activations for every member: checked against the cost rows."""
    from mobilenet_edge.pipeline.cost.table import cost_table
    from mobilenet_edge.pipeline.limits import ACTIVATION_FLOATS_PER_PIXEL

    arch, _ = tiny_model
    rows = cost_table(1.0, 224, 1000, arch=arch.key).layers
    largest = max(np.prod(r.input) + np.prod(r.output) for r in rows)
    assert largest / 224 ** 2 <= ACTIVATION_FLOATS_PER_PIXEL, arch.key


@pytest.mark.slow
def test_every_entry_converts_to_tflite_int8_and_onnx(tiny_model, tmp_path):
    """Full-integer TFLite (every op int8) and ONNX fp32 that matches Keras, for every member."""
    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.pipeline.convert.onnx import convert_onnx
    from mobilenet_edge.pipeline.convert.tflite import convert_tflite

    arch, model = tiny_model
    rng = np.random.default_rng(0)
    samples = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    calib = CalibrationSet.from_samples(samples, "uniform noise", "test")
    int8 = convert_tflite(model, "int8", tmp_path / "m_int8.tflite", calib)
    assert int8.inputs[0]["dtype"] in ("uint8", "int8")
    onnx_file = convert_onnx(model, tmp_path / "m.onnx", samples[:2])
    assert onnx_file.path.is_file()


def test_int8_diagnosis_names_the_layer_of_any_member():
    """The diagnosis finds the conv a fused tensor came from by layer names, not by a V1 pattern."""
    from mobilenet_edge.pipeline.convert.diagnose import layer_of

    v1 = {"conv1", "conv_pw_1", "conv_pw_13", "conv_preds"}
    assert layer_of("m/conv_pw_13_relu/Relu6;m/conv_pw_13_bn/FusedBatchNormV3;m/conv_pw_13/conv", v1) == "conv_pw_13"
    assert layer_of("m/conv1_relu/Relu6;m/conv1/convolution", v1) == "conv1"
    v4 = {"block4_dw_start", "block4_expand", "block4_dw_mid", "block4_project", "predictions"}
    assert layer_of("m/block4_dw_mid_relu/Relu;m/block4_dw_mid_bn/FusedBatchNormV3", v4) == "block4_dw_mid"
    assert layer_of("serving_default_input:0", v4) == "serving_default_input:0"


def test_imagenet_weights_of_an_arch_that_has_none():
    with pytest.raises(PipelineError, match="ARCH=v4-conv-s \\(MobileNet V4 Conv-S has none\\)"):
        build.build_model(Variant(1.0, 224, "imagenet", "imagenet", "v4-conv-s"), 1000)
