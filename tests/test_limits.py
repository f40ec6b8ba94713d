"""Limits before work: a variant that cannot be built or cannot fit in memory is refused with one line before
OUT is touched (no empty folder left behind). No TensorFlow work runs in these tests."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import CLI, ROOT, error_line, run_cli
from mobilenet_edge.pipeline.limits import OVERRIDE, export_estimate


def run_with(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_an_alpha_with_a_zero_channel_layer_is_refused_before_out_exists(tmp_path):
    proc = run_cli("export", "--alpha", "0.02", "--weights", "random", "--task", "fashion-mnist", "--res", "32",
                   "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "expected alpha >= 1/32 so that every layer keeps a channel, received alpha=0.02" in error_line(proc)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, part", [
    (("--res", "4096", "--formats", "fp32"), "model"),  # one image's activations alone
    (("--res", "512", "--n", "60000"), "calibration"),
    (("--res", "1024", "--formats", "fp32", "--validate"), "validation"),  # the whole test split, by default
])
def test_work_that_cannot_fit_is_refused_with_the_limit_and_the_override(tmp_path, args, part):
    env = {OVERRIDE: "8"}  # the same machine for everyone: 8 GB
    proc = run_with(env, "export", "--weights", "random", "--task", "fashion-mnist", *args, "--out", tmp_path / "out")
    line = error_line(proc)
    assert proc.returncode == 2 and line.startswith("error: expected the export to fit in memory, received RES=")
    assert f"(mostly {part})" in line and f"where {OVERRIDE}=8 is 8.0 GB" in line and f"set {OVERRIDE}=<GB>" in line
    assert not (tmp_path / "out").exists()


def test_validation_alone_checks_its_limit_too(tiny_export, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_export.variant_dir.parents[1], out)
    proc = run_with({OVERRIDE: "1"}, "validate", "--task", "fashion-mnist", "--alpha", "0.25", "--res", "32",
                    "--out", out)
    assert "expected validation to fit in memory, received RES=32 LIMIT=10000" in error_line(proc)
    assert not (out / "fashion-mnist" / "mobilenet_0.25_32" / "validation.json").exists()


def test_the_estimate_grows_with_side_samples_and_images():
    small = export_estimate(32, 0.25, 200, 1000).total
    assert export_estimate(64, 0.25, 200, 1000).total > small
    assert export_estimate(32, 0.25, 20000, 1000).total > small
    assert export_estimate(32, 0.25, 200, 10000).total > small
    # N x RES x RES x 3 values, 2 bytes each while the samples are decoded and stacked
    assert export_estimate(224, 1.0, 10_000, None).parts["calibration"] == 10_000 * 224 * 224 * 3 * 2
    assert export_estimate(32, 0.25, None, None).parts.keys() == {"model"}


def test_a_bad_override_is_one_line(tmp_path):
    proc = run_with({OVERRIDE: "lots"}, "export", "--weights", "random", "--task", "fashion-mnist", "--res", "32",
                    "--out", tmp_path / "out")
    assert f"expected {OVERRIDE} to be a number of GB, received 'lots'" in error_line(proc)


def test_calibration_samples_stream_with_the_digest_of_the_whole_array():
    import hashlib

    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.tasks import resolve_task

    calib = calibration_set(resolve_task("fashion-mnist"), 32, num_samples=6, progress=False)
    assert calib.pixels.dtype == np.uint8 and len(calib) == 6  # float32 only one sample at a time
    assert calib.samples_sha256() == hashlib.sha256(calib.samples.tobytes()).hexdigest()
    assert np.array_equal(np.stack(list(calib.iter_samples())), calib.samples)
    assert np.array_equal(calib.head(2), calib.samples[:2])


def test_a_long_export_states_its_work_as_a_count_not_a_time(caplog):
    """A time from a fixed rate was 10x off here (a '14 min' export took under 2); the count is exact."""
    import logging

    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.config import ValidationConfig, Variant
    from mobilenet_edge.pipeline.limits import check_before_work

    with caplog.at_level(logging.INFO, logger="mobilenet_edge.pipeline.limits"):
        check_before_work(Variant(1.0, 64, "fashion-mnist", "random"), resolve_task("fashion-mnist"), 200,
                          ValidationConfig())
    line = next(r.getMessage() for r in caplog.records if "inferences" in r.getMessage())
    assert line.startswith("the export runs about 70400 inferences of 46 M Mult-Adds (3.3 T in all")
    assert "min" not in line
