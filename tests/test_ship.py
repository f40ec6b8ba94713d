"""Ship only what passed: the android/ folder holds the .tflite files that passed their gates, the README says
why every other file was left out; and the one command from a folder of photos to that folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.validate import validate
from mobilenet_edge.pipeline.config import Gates, ValidationConfig

TASK_LIBRARY_SCRIPT = Path(__file__).resolve().parent / "android_env" / "task_library.py"
OPEN = Gates(fp32_agreement=0.0, fp16_agreement=0.0, int8_drop_points=100.0, int8_agreement=0.0)
# No file can agree with the float model on more than every image: the fp16 file fails this gate, whatever it is.
FP16_FAILS = Gates(fp16_agreement=1.01, fp32_agreement=0.0, int8_drop_points=100.0, int8_agreement=0.0)


@pytest.fixture
def variant_copy(tiny_export, tmp_path):
    """A copy of the tiny every-format export (its ONNX files too), to validate without touching the fixture."""
    copy = tmp_path / "variant" / tiny_export.variant_dir.name  # a variant folder is named after its variant
    shutil.copytree(tiny_export.variant_dir, copy, ignore=shutil.ignore_patterns("android", "validation.json"))
    return copy


def _validate(folder, gates):
    from mobilenet_edge.calibration.tasks import resolve_task

    return validate(folder, resolve_task("fashion-mnist"), ValidationConfig(limit=50, gates=gates))


def test_a_file_that_fails_its_gate_is_left_out_and_the_readme_says_why(variant_copy, tmp_path):
    from mobilenet_edge.pipeline.android import export_android

    _validate(variant_copy, OPEN)
    out = export_android(variant_copy, tmp_path / "assets")
    shipped = sorted(p.name for p in out.glob("*.tflite"))
    assert shipped == ["mobilenet_0.25_32_dynamic.tflite", "mobilenet_0.25_32_fp16.tflite",
                       "mobilenet_0.25_32_fp32.tflite", "mobilenet_0.25_32_int8.tflite"]  # never the per-tensor file
    readme = (out / "README.md").read_text()
    assert "- `mobilenet_0.25_32_int8_per_tensor.tflite`: per-tensor int8, the comparison file" in readme
    assert "- `mobilenet_0.25_32_fp32.onnx`: onnx file: Android apps load .tflite" in readme

    _validate(variant_copy, FP16_FAILS)
    assert export_android(variant_copy, tmp_path / "assets") == out
    assert not (out / "mobilenet_0.25_32_fp16.tflite").exists(), "a file shipped earlier stays after failing"
    assert sorted(p.name for p in out.glob("*.tflite")) == [n for n in shipped if "fp16" not in n]
    readme = (out / "README.md").read_text()
    assert "- `mobilenet_0.25_32_fp16.tflite`: failed its gate: top1_agreement = " in readme
    assert "expected >= 1.01" in readme
    table = readme.split("Left out:")[0]
    assert "`mobilenet_0.25_32_fp16.tflite`" not in table and "`mobilenet_0.25_32_int8.tflite` | int8 | uint8" in table
    assert "MB |" in table and "not benchmarked (make bench)" in table


def test_unvalidated_or_changed_files_do_not_ship(variant_copy, tmp_path):
    from mobilenet_edge.pipeline.android import export_android

    with pytest.raises(PipelineError, match=r"expected at least one .tflite that passed its validation gate, "
                                            r"received none: .*not validated"):
        export_android(variant_copy, tmp_path / "assets")
    _validate(variant_copy, OPEN)
    validation = json.loads((variant_copy / "validation.json").read_text())
    for row in validation["artifacts"]:  # as if the files had been re-exported since the validation
        row["sha256"] = "0" * 64
    (variant_copy / "validation.json").write_text(json.dumps(validation))
    with pytest.raises(PipelineError, match="not validated"):
        export_android(variant_copy, tmp_path / "assets")


def test_random_weights_are_never_shipped(tmp_path):
    from mobilenet_edge.pipeline.android_task import android_from_task
    from mobilenet_edge.pipeline.config import AndroidTaskConfig
    from mobilenet_edge.pipeline.config import Variant

    (tmp_path / "photos" / "a").mkdir(parents=True)
    (tmp_path / "photos" / "b").mkdir()
    with pytest.raises(PipelineError, match="expected trained weights to ship, received WEIGHTS=random"):
        android_from_task(AndroidTaskConfig(Variant(0.25, 32, str(tmp_path / "photos"), "random"), out=tmp_path))


def test_cli_refuses_random_weights_in_one_line(tmp_path):
    from conftest import error_line, run_cli

    for cls in ("a", "b"):
        (tmp_path / "photos" / cls).mkdir(parents=True)
    proc = run_cli("android", "--task", tmp_path / "photos", "--weights", "random", "--alpha", "0.25", "--res", "32",
                   "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert error_line(proc).startswith("error: expected trained weights to ship, received WEIGHTS=random")


@pytest.fixture(scope="session")
def photos_to_android(tmp_path_factory):
    """`make android TASK=<folder>` on 3 classes x 30 tiny photos: trains (1 + 1 epochs), exports, ships."""
    from mobilenet_edge.benchmarks.photo_task import make_photo_task
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.android_task import android_from_task
    from mobilenet_edge.pipeline.config import AndroidTaskConfig
    from mobilenet_edge.pipeline.config import QuantConfig, Variant
    from mobilenet_edge.pipeline.train import small_data
    from mobilenet_edge.pipeline.config import TrainConfig

    root = tmp_path_factory.mktemp("photos-android")
    photos = make_photo_task(root / "photos", {"trouser": 1, "sneaker": 7, "bag": 8}, per_class=30, side=48)
    task = resolve_task(str(photos))
    train = TrainConfig(**small_data(task, "reference", epochs=1, head_epochs=1, batch_size=16, bn_batches=2,
                                     resolution_sweep=False))
    cfg = AndroidTaskConfig(Variant(0.25, 32, str(photos), ""), train=train, quant=QuantConfig(num_samples=16),
                            out=root / "out", bench_threads=1)
    return cfg, android_from_task(cfg)


@pytest.mark.slow
def test_photos_to_android_trains_then_reuses(photos_to_android):
    from mobilenet_edge.pipeline.android_task import android_from_task

    cfg, first = photos_to_android
    assert first.trained and not first.reused and first.checkpoint.is_file()
    validation = json.loads((first.variant_dir / "validation.json").read_text())
    passed = sorted(r["file"] for r in validation["artifacts"] if r["gate"]["passed"])
    assert sorted(p.name for p in first.android.glob("*.tflite")) == passed
    assert (first.android / "labels.txt").read_text().splitlines() == ["bag", "sneaker", "trouser"]
    readme = (first.android / "README.md").read_text()
    for s in first.selection.shipped:
        assert f"`{s.entry['file']}`" in readme and s.latency_ms is not None
    for file, why in first.selection.left_out:
        assert f"- `{file}`: {why}" in readme
    assert "cores' worth of CPU when it was measured" in readme  # a shared machine's latency says so
    again = android_from_task(cfg)  # same files, same settings: the checkpoint is reused, not retrained
    assert again.reused and not again.trained and again.checkpoint == first.checkpoint


@pytest.mark.slow
def test_task_library_classifies_shipped_files_with_the_folders_classes(photos_to_android, tmp_path):
    import subprocess

    from android_env.venv import PyPIUnreachable, ensure_venv

    try:
        python = ensure_venv()
    except PyPIUnreachable as exc:
        pytest.skip(f"the tflite-support venv cannot be created: PyPI is unreachable ({exc.args[0][-300:]})")
    _, result = photos_to_android
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(image)
    shipped = sorted(result.android.glob("*.tflite"))
    assert shipped
    for model in shipped:
        proc = subprocess.run([str(python), str(TASK_LIBRARY_SCRIPT), "classify", str(model), str(image)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        categories, = json.loads(proc.stdout.strip().splitlines()[-1])["results"]
        assert sorted(c["label"] for c in categories) == ["bag", "sneaker", "trouser"], model.name
