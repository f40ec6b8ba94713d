"""Stage 1: the model is the variant asked for, and bad requests are refused with one line."""

import pytest

from conftest import error_line, run_cli
from mobilenet_edge.pipeline.build import build_model
from mobilenet_edge.pipeline.config import Variant, resolution_from
from mobilenet_edge.pipeline.errors import PipelineError


@pytest.mark.parametrize("rho, side", [(1.0, 224), (0.857, 192), (0.714, 160), (0.571, 128), (0.25, 56)])
def test_rho_sets_the_input_size(rho, side):
    assert resolution_from(None, rho) == side


def test_res_wins_over_rho_and_default_is_224():
    assert resolution_from("96", "0.5") == 96
    assert resolution_from(None, None) == 224


def test_rho_is_input_size_not_depth_multiplier():
    model = build_model(Variant(0.25, resolution_from(None, 0.25), "fashion-mnist", "random"), 10)
    assert model.input_shape == (None, 56, 56, 3)
    dw = model.get_layer("conv_dw_1")
    assert dw.depth_multiplier == 1  # Keras's depth_multiplier is another knob and stays 1
    assert model.get_layer("conv_pw_13").filters == 256  # 1024 * alpha


@pytest.mark.parametrize("alpha", ["0", "1.5", "-0.25", "abc"])
def test_bad_alpha(alpha):
    with pytest.raises(PipelineError, match=r"expected alpha in \(0, 1\], received alpha="):
        Variant(alpha, 224)


def test_resolution_below_32():
    with pytest.raises(PipelineError, match="expected resolution >= 32"):
        Variant(0.5, 31)


def test_imagenet_weights_only_for_published_variants():
    with pytest.raises(PipelineError, match=r"alpha in \(0.25, 0.5, 0.75, 1.0\) and RES in \(128, 160, 192, 224\)"):
        build_model(Variant(0.6, 224, "imagenet", "imagenet"), 1000)
    with pytest.raises(PipelineError, match="received alpha=0.5, RES=96"):
        build_model(Variant(0.5, 96, "imagenet", "imagenet"), 1000)


def test_imagenet_weights_offline_fail_fast_and_name_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached weights
    proc = run_cli("export", "--alpha", "0.25", "--res", "128", "--task", "imagenet", "--weights", "imagenet",
                   "--out", tmp_path / "out", "--formats", "fp32")
    if proc.returncode == 0:
        pytest.skip("ImageNet weights are reachable here (online or cached)")
    line = error_line(proc)
    assert proc.returncode == 2
    assert "WEIGHTS=random" in line and "TASK=fashion-mnist" in line and ".weights.h5" in line


def test_weights_file_for_another_architecture(tmp_path):
    other = build_model(Variant(0.5, 32, "fashion-mnist", "random"), 10)
    path = tmp_path / "alpha050.weights.h5"
    other.save_weights(path)
    proc = run_cli("export", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--weights", path,
                   "--out", tmp_path / "out", "--formats", "fp32")
    assert proc.returncode == 2
    assert "does not fit" in error_line(proc)


def test_keras_file_weights_load_at_another_resolution(tmp_path):
    source = build_model(Variant(0.25, 64, "fashion-mnist", "random"), 10)
    source.save(tmp_path / "m.keras")
    model = build_model(Variant(0.25, 96, "fashion-mnist", str(tmp_path / "m.keras")), 10)
    assert model.input_shape == (None, 96, 96, 3)
    assert all((a == b).all() for a, b in zip(model.get_weights(), source.get_weights()))


def test_reference_checkpoints_load_at_every_offered_resolution():
    for res in (32, 64, 128, 224):
        model = build_model(Variant(0.25, res, "fashion-mnist", "reference"), 10)
        assert model.input_shape == (None, res, res, 3)
