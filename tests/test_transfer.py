"""Transfer from a backbone with another head, and the data checks of a folder task (tiny real folders)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mobilenet_edge.calibration.folder_checks import MIN_PER_CLASS, check_folder
from mobilenet_edge.calibration.tasks import resolve_task, split_of
from mobilenet_edge.pipeline import build
from mobilenet_edge.pipeline.config import Variant
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.train.transfer import initial_model

REFERENCE = build.reference_checkpoint("fashion-mnist", 0.25)  # 10 classes, trained at 32-64 px


def _image(path, level, side=40, seed=0):
    pixels = np.clip(np.random.default_rng(seed).normal(level, 25, (side, side, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _source_layers(resolution):
    """The reference checkpoint as its own 10-class model, BatchNorm statistics of `resolution`."""
    source = build.mobilenet(0.25, 64, 10)
    source.load_weights(REFERENCE)
    build.load_batchnorm_statistics(source, REFERENCE, resolution)
    return {layer.name: layer.get_weights() for layer in source.layers}


def test_ten_class_checkpoint_to_three_classes_keeps_the_backbone_exactly():
    source = _source_layers(32)
    model, transfer = initial_model(Variant(0.25, 32, "x", "random"), ("a", "b", "c"), str(REFERENCE))
    assert model.output_shape == (None, 3)
    assert transfer.new == ("conv_preds",) and transfer.head_replaced
    assert transfer.source_classes == tuple(build.checkpoint_info(REFERENCE)["classes"])
    weighted = [layer for layer in model.layers if layer.weights]
    assert list(transfer.kept) == [layer.name for layer in weighted[:-1]]
    for layer in weighted[:-1]:  # every backbone tensor (BatchNorm statistics included) bit for bit
        for ours, theirs in zip(layer.get_weights(), source[layer.name]):
            np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)
    head = model.get_layer("conv_preds").get_weights()[0]
    assert head.shape == (1, 1, 256, 3) and not np.array_equal(head[..., :3], source["conv_preds"][0][..., :3])
    record = transfer.to_dict()
    assert record["new_layers"] == ["conv_preds"] and record["kept_layers"] == len(weighted) - 1


def test_same_classes_keep_the_head_and_a_keras_file_transfers(tmp_path):
    names = tuple(build.checkpoint_info(REFERENCE)["classes"])
    model, transfer = initial_model(Variant(0.25, 64, "x", "random"), names, str(REFERENCE))
    assert transfer.new == () and not transfer.head_replaced
    keras_file = tmp_path / "model.keras"
    model.save(keras_file)
    again, from_keras = initial_model(Variant(0.25, 64, "x", "random"), ("a", "b"), str(keras_file))
    assert from_keras.source_classes == 10 and from_keras.new == ("conv_preds",)
    np.testing.assert_array_equal(again.get_layer("conv_pw_13").get_weights()[0],
                                  model.get_layer("conv_pw_13").get_weights()[0])


def test_another_alpha_is_refused_in_one_line():
    with pytest.raises(PipelineError, match=r"expected weights of MobileNet V1 alpha=0.5 with 10 classes"):
        initial_model(Variant(0.5, 32, "x", "random"), ("a", "b"), str(REFERENCE))
    with pytest.raises(PipelineError, match="expected INIT random, imagenet, reference or an existing weights file"):
        initial_model(Variant(0.25, 32, "x", "random"), ("a", "b"), "missing.weights.h5")


@pytest.mark.slow
def test_training_records_the_transfer_and_the_data_check(tmp_path):
    """A short run from the 10-class checkpoint on a 2-class folder: frozen head phase, then end to end."""
    from mobilenet_edge.pipeline.train import small_data, train
    from mobilenet_edge.pipeline.config import TrainConfig

    for name, level in (("dark", 50), ("bright", 205)):
        for i in range(40):
            _image(tmp_path / "task" / name / f"{i:02d}.png", level, seed=i + level)
    task = resolve_task(str(tmp_path / "task"))
    cfg = TrainConfig(**small_data(task, str(REFERENCE), epochs=1, head_epochs=1, batch_size=8, bn_batches=2,
                                   resolution_sweep=False))
    result = train(Variant(0.25, 32, task.name, "random"), task, cfg, tmp_path / "ckpt")
    record = json.loads(result.record.read_text())
    assert record["transfer"]["new_layers"] == ["conv_preds"] and record["transfer"]["kept_layers"] > 50
    assert set(record["phases"]) == {"head", "end_to_end"} and "val_loss" in record["phases"]["head"]
    split = record["data_check"]["split"]
    assert split["train"]["images"] + split["val"]["images"] + split["test"]["images"] == 80
    assert record["test_images"] == split["test"]["images"] and record["train_images"] == split["train"]["images"]
    assert record["data_sha256"] == check_folder(task.name, 32).content_sha256



@pytest.mark.slow
def test_a_linear_probe_trains_the_head_only_and_needs_a_new_head(tmp_path):
    """linear_probe: one frozen phase of `epochs`, no end-to-end phase, every backbone kernel as transferred."""
    from mobilenet_edge.pipeline.train import small_data, train
    from mobilenet_edge.pipeline.config import TrainConfig

    for name, level in (("dark", 50), ("bright", 205)):
        for i in range(30):
            _image(tmp_path / "task" / name / f"{i:02d}.png", level, seed=i + level)
    task = resolve_task(str(tmp_path / "task"))
    cfg = TrainConfig(**small_data(task, str(REFERENCE), epochs=1, head_epochs=0, batch_size=8, bn_batches=2,
                                   resolution_sweep=False, linear_probe=True))
    result = train(Variant(0.25, 32, task.name, "random"), task, cfg, tmp_path / "ckpt")
    record = json.loads(result.record.read_text())
    assert set(record["phases"]) == {"head"} and record["phases"]["head"]["epochs"] == 1
    probe = build.mobilenet(0.25, 32, 2)
    probe.load_weights(result.checkpoint)
    source = _source_layers(32)
    for name in ("conv1", "conv_dw_7", "conv_pw_13"):
        np.testing.assert_array_equal(probe.get_layer(name).get_weights()[0], source[name][0], err_msg=name)
    assert not np.array_equal(probe.get_layer("conv_preds").get_weights()[0][..., :2], source["conv_preds"][0][..., :2])
    with pytest.raises(PipelineError, match="expected a transferred backbone with a new head for a linear probe"):
        train(Variant(0.25, 32, task.name, "random"), task, TrainConfig(**small_data(
            task, "random", epochs=1, batch_size=8, bn_batches=2, resolution_sweep=False, linear_probe=True)),
            tmp_path / "random")

def _files_on_both_sides(folder, cls):
    """Two file names of class `cls`, one in the training split and one held out (split by path hash)."""
    train = held = None
    for i in range(200):
        rel = f"{cls}/dup{i}.png"
        side = split_of(rel)
        train = train or (rel if side == "train" else None)
        held = held or (rel if side != "train" else None)
    return folder / train, folder / held


def test_each_data_problem_gives_its_line(tmp_path):
    root = tmp_path / "photos"
    for i in range(3 * MIN_PER_CLASS):
        _image(root / "many" / f"{i:03d}.png", 200, seed=i)
    for i in range(5):
        _image(root / "few" / f"{i:03d}.png", 50, seed=100 + i)
    (root / "many" / "broken.jpg").write_bytes(b"not an image")
    _image(root / "few" / "tiny.png", 50, side=10)
    first, second = _files_on_both_sides(root, "many")
    _image(first, 120, seed=7)
    _image(second, 120, seed=7)  # same pixels, same PNG bytes

    check = check_folder(root, 64)
    assert len(check.problems) == 5, check.problems
    assert any(l.startswith("class 'few' has") and f"expected at least {MIN_PER_CLASS}" in l for l in check.problems)
    assert any(l.startswith("class imbalance: 'many'") for l in check.problems)
    assert any("also appear (same content) in the held-out split" in l and first.name in l for l in check.problems)
    assert any(l.startswith("1 unreadable file(s), skipped: many/broken.jpg") for l in check.problems)
    assert any(l.startswith("1 image(s) far smaller than RES=64") and "few/tiny.png (10 px)" in l
               for l in check.problems)
    assert check == check_folder(root, 64)  # deterministic, split included


def test_a_clean_folder_has_no_problem_and_its_split_is_recorded(tmp_path):
    root = tmp_path / "photos"
    for cls, level in (("a", 60), ("b", 190)):
        for i in range(MIN_PER_CLASS + 20):
            _image(root / cls / f"{i:03d}.png", level, side=64, seed=i + level)
    check = check_folder(root, 64)
    assert check.problems == ()
    assert sum(check.split[s]["images"] for s in ("train", "val", "test")) == 2 * (MIN_PER_CLASS + 20)
    assert "sha256(path relative to the folder)" in check.split["rule"]
    before = check.content_sha256
    _image(root / "a" / "000.png", 10, side=64)  # one file's content changed
    assert check_folder(root, 64).content_sha256 != before


def test_transfer_block_is_generated_from_the_record():
    from mobilenet_edge.benchmarks import readme
    from mobilenet_edge.benchmarks.transfer_bench import BLOCK, RECORD, table

    record = json.loads(RECORD.read_text())
    assert readme.block_text(BLOCK) == table(record).rstrip("\n") + "\n"
    assert [r["init"] for r in record["runs"]] == ["reference", "random"]
