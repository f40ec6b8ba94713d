"""Data-free calibration (ZeroQ) on a tiny real model, and the README table generated from its record."""
import json

import numpy as np
import pytest

from mobilenet_edge.calibration import synthetic
from mobilenet_edge.calibration.preprocessing import Preprocessing
from mobilenet_edge.pipeline.errors import PipelineError


@pytest.fixture(scope="module")
def tiny_model():
    """The committed alpha=0.25 reference checkpoint at 32 px (one of its trained sides: real BatchNorm stats)."""
    from mobilenet_edge.pipeline.build import build_model
    from mobilenet_edge.pipeline.config import Variant

    return build_model(Variant(0.25, 32, "fashion-mnist", "reference"), 10)


CFG = synthetic.SyntheticConfig(steps=15, batch=4)


def test_optimisation_brings_batchnorm_statistics_closer(tiny_model):
    before = synthetic.optimise_inputs(tiny_model, 4, seed=3, value_range=(-1, 1),
                                       cfg=synthetic.SyntheticConfig(steps=0, batch=4), progress=False)
    after = synthetic.optimise_inputs(tiny_model, 4, seed=3, value_range=(-1, 1), cfg=CFG, progress=False)
    gap_before, gap_after = synthetic.batchnorm_gap(tiny_model, before), synthetic.batchnorm_gap(tiny_model, after)
    assert gap_after < 0.8 * gap_before, (gap_before, gap_after)
    assert after.min() >= -1 and after.max() <= 1  # inside the contract's range, like real pixels


def test_same_seed_same_pixels_and_the_cache_hits(tiny_model, tmp_path):
    pre = Preprocessing(32, crop_fraction=1.0)
    a = synthetic.synthetic_pixels(tiny_model, pre, 4, seed=1, cfg=CFG, cache_dir=tmp_path / "a", progress=False)
    b = synthetic.synthetic_pixels(tiny_model, pre, 4, seed=1, cfg=CFG, cache_dir=tmp_path / "b", progress=False)
    assert not a.cached and not b.cached and a.key == b.key
    assert np.array_equal(a.pixels, b.pixels) and a.pixels.dtype == np.uint8 and a.pixels.shape == (4, 32, 32, 3)
    again = synthetic.synthetic_pixels(tiny_model, pre, 4, seed=1, cfg=CFG, cache_dir=tmp_path / "a", progress=False)
    assert again.cached and np.array_equal(again.pixels, a.pixels)
    other = synthetic.synthetic_pixels(tiny_model, pre, 4, seed=2, cfg=synthetic.SyntheticConfig(steps=0, batch=4),
                                       cache_dir=tmp_path / "a", progress=False)
    assert other.key != a.key and not other.cached


def test_pixels_follow_the_contract_of_each_arch():
    """V1/V2 inputs in [-1, 1] and V3's 0..255 both map back to the same uint8 pixels."""
    pixels = np.array([[[0, 128, 255]]], np.uint8)
    for pre in (Preprocessing(8), Preprocessing(8, mean=(0.0,) * 3, std=(1.0,) * 3)):
        assert np.array_equal(synthetic.to_pixels(pre.normalize(pixels), pre), pixels)


def test_calibration_set_synthetic_for_any_task(tiny_model, tmp_path, caplog):
    from mobilenet_edge.calibration.representative import calibration_set, uses_synthetic
    from mobilenet_edge.calibration.tasks import resolve_task

    task = resolve_task("fashion-mnist")
    assert uses_synthetic(task, "synthetic") and not uses_synthetic(task, None)
    assert uses_synthetic(resolve_task("imagenet"), None)
    with caplog.at_level("WARNING"):
        calib = calibration_set(task, 32, 4, seed=1, calib_dir="synthetic", progress=False, model=tiny_model,
                                synthetic=CFG, cache_dir=tmp_path)
    assert calib.source.startswith("synthetic") and calib.to_dict()["count"] == 4
    assert calib.samples.min() >= -1 and calib.samples.max() <= 1
    assert any("CALIB=" in r.message and "synthetic" in r.message for r in caplog.records)
    with pytest.raises(PipelineError, match="expected CALIB="):
        calibration_set(resolve_task("imagenet"), 32, 4, progress=False)


def test_readme_table_is_generated_from_the_record():
    import mobilenet_edge.benchmarks.synthetic_calibration as bench

    from mobilenet_edge.benchmarks import readme

    record = json.loads(bench.RECORD.read_text())
    assert readme.block_text(bench.BLOCK) == bench.readme_block(record).rstrip("\n") + "\n"
