"""Every failure is one line: argparse's own errors and operating-system errors (a path that cannot be written)
at every stage, as `error: expected …, received …`; predict labels the decodable images of a folder and lists
the one it skipped. Root ignores file permissions, so an unwritable path is made of a folder where a file
must go (os.replace then fails as it would on a read-only or full disk: an OSError)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import error_line, run_cli

VARIANT = ("--task", "fashion-mnist", "--alpha", "0.25", "--res", "32")


@pytest.mark.parametrize("args, expected", [
    (("bench-remote", "--host", "pi@h", "--port", "22x"), "expected --port to be a whole number, received '22x'"),
    (("predict", "--top", "five"), "expected --top to be a whole number, received 'five'"),
    (("bench", "--threads", "two"), "expected --threads to be a whole number, received 'two'"),
    (("validate", "--limit", "1e3"), "expected --limit to be a whole number, received '1e3'"),
    (("validate", "--gate-fp32", "high"), "expected --gate-fp32 to be a number, received 'high'"),
    (("export", "--int8-io", "int4"), "expected --int8-io to be one of 'uint8', 'int8', 'float', received 'int4'"),
    (("bench-remote",), "expected --host, received none"),
    (("report", "--bogus"), "expected only the options that --help lists, received '--bogus'"),
    (("export", "--n"), "expected a value after --n, received none"),
])
def test_argument_errors_are_one_line(args, expected):
    proc = run_cli(*args)
    assert proc.returncode == 2 and expected in error_line(proc)
    assert "usage:" not in proc.stderr


@pytest.fixture
def out(tiny_export, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(tiny_export.variant_dir.parents[1], copy)
    return copy


def _blocked(path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir(parents=True)


@pytest.mark.parametrize("stage, args, blocked", [
    ("validate", ("validate", *VARIANT, "--limit", "20"), "fashion-mnist/mobilenet_0.25_32/validation.json"),
    ("bench", ("bench", *VARIANT, "--runs", "2"), "fashion-mnist/mobilenet_0.25_32/benchmark-local.json"),
    ("report", ("report",), "summary.json"),
    ("android", ("android", *VARIANT), "fashion-mnist/mobilenet_0.25_32/android/labels.txt"),
    ("export", ("export", *VARIANT, "--formats", "fp32"), "fashion-mnist/mobilenet_0.25_32/cost.json"),
])
def test_an_os_error_at_any_stage_is_one_line(out, stage, args, blocked):
    _blocked(out / blocked)
    proc = run_cli(*args, "--out", out)
    line = error_line(proc)
    assert proc.returncode == 1 and line.startswith("error: expected to read or write "), line
    assert "received Is a directory (EISDIR)" in line and blocked.rsplit("/", 1)[-1] in line


def test_predict_labels_the_readable_images_and_lists_the_skipped_one(tiny_export, tmp_path):
    from mobilenet_edge.calibration import fashion_mnist

    images = tmp_path / "images"
    images.mkdir()
    split = fashion_mnist.load_split("test")
    for i in range(5):
        Image.fromarray(split.images[i], "L").save(images / f"{i}.png")
    (images / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    artifact = tiny_export.variant_dir / "mobilenet_0.25_32_int8.tflite"
    proc = run_cli("predict", images, "--artifact", artifact, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert sorted(r["image"].rsplit("/", 1)[-1] for r in data["images"]) == ["0.png", "1.png", "3.png", "4.png"]
    assert [s["image"].rsplit("/", 1)[-1] for s in data["skipped"]] == ["2.png"]
    table = run_cli("predict", images, "--artifact", artifact)
    assert table.returncode == 0 and table.stdout.rstrip().endswith(str(images / "2.png"))
    assert "skipped 1 file(s) that could not be decoded" in table.stdout
    assert np.isfinite([r["top"][0]["score"] for r in data["images"]]).all()


def test_a_path_traversal_archive_is_bad_input(tmp_path, monkeypatch):
    """CALIB_URL whose archive writes outside its folder: exit 2 (bad input), not 4 (a bug)."""
    import hashlib
    import io
    import tarfile

    archive = tmp_path / "images.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        data = b"not really an image"
        info = tarfile.TarInfo("../escaped.jpg")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setenv("MOBILENET_EDGE_CACHE", str(tmp_path / "cache"))
    proc = run_cli("export", *VARIANT, "--formats", "int8", "--calib-url", archive.as_uri(), "--calib-sha256", sha,
                   "--out", tmp_path / "out")
    line = error_line(proc)
    assert proc.returncode == 2 and "escaped.jpg" in line, line
    assert not (tmp_path / "cache" / "escaped.jpg").exists()


def _immutable(path, on: bool) -> bool:
    import subprocess

    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("args", [("validate", *VARIANT, "--limit", "20"), ("bench", *VARIANT, "--runs", "2"),
                                  ("export", *VARIANT, "--formats", "fp32"), ("android", *VARIANT)])
def test_a_read_only_out_is_exit_1_before_any_work(out, args):
    """A folder that takes no files (read-only, as root: immutable): one line, exit 1 as the README says."""
    folder = out / "fashion-mnist" / "mobilenet_0.25_32"
    if not _immutable(folder, True):
        pytest.skip("chattr +i is not available here")
    try:
        proc = run_cli(*args, "--out", out)
    finally:
        _immutable(folder, False)
    line = error_line(proc)
    assert proc.returncode == 1 and line.startswith("error: expected to read or write"), line
    assert str(folder) in line and proc.stdout == "", proc.stdout  # refused before the work, nothing printed


def test_a_deleted_listed_file_is_named_missing(out):
    folder = out / "fashion-mnist" / "mobilenet_0.25_32"
    (folder / "mobilenet_0.25_32_fp16.tflite").unlink()
    proc = run_cli("validate", *VARIANT, "--limit", "20", "--out", out)
    line = error_line(proc)
    assert proc.returncode == 2 and "mobilenet_0.25_32_fp16.tflite" in line and "no such file" in line, line


@pytest.mark.parametrize("where", ["weights", "model.keras"])
def test_a_garbage_keras_file_is_named_as_such(out, tmp_path, where):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is no keras archive")
    if where == "weights":
        proc = run_cli("export", *VARIANT[:-2], "--res", "32", "--weights", garbage, "--formats", "fp32",
                       "--out", tmp_path / "o")
    else:
        shutil.copyfile(garbage, out / "fashion-mnist" / "mobilenet_0.25_32" / "model.keras")
        proc = run_cli("validate", *VARIANT, "--limit", "20", "--out", out)
    line = error_line(proc)
    assert proc.returncode == 2 and "not found" not in line.lower() and "zip" in line, line
