"""The command line as a user meets it: one-line errors, exit codes, the ImageNet-style EVAL folder."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import error_line, run_cli


@pytest.mark.parametrize("args, expected", [
    (["--alpha", "1.5"], "expected alpha in (0, 1], received alpha='1.5'"),
    (["--alpha", "zero"], "expected alpha in (0, 1], received alpha='zero'"),
    (["--res", "31"], "expected resolution >= 32"),
    (["--res", "big"], "expected RES to be an integer"),
    (["--rho", "1.2"], "expected RHO in (0, 1], received RHO='1.2'"),
    (["--alpha", "0.6", "--weights", "imagenet", "--task", "imagenet"], "for MobileNet V1 ImageNet weights, received alpha=0.6"),
    (["--task", "/no/such/folder"], "expected TASK to be 'imagenet', 'fashion-mnist' or a folder"),
    (["--weights", "/no/such.weights.h5", "--task", "fashion-mnist"], "expected WEIGHTS to be imagenet, random"),
    (["--formats", "fp64", "--task", "fashion-mnist"], "expected formats among"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    proc = run_cli("export", "--out", tmp_path, *args)
    assert proc.returncode == 2
    assert expected in error_line(proc)
    assert not list(tmp_path.rglob("*.tflite"))


def test_cost_prints_the_paper_figures():
    proc = run_cli("cost")
    assert proc.returncode == 0, proc.stderr
    assert "Mult-Adds: 568.7 M" in proc.stdout and "Parameters: 4.21 M" in proc.stdout
    assert "94.86%" in proc.stdout  # Conv 1x1 share, paper Table 2


def test_cost_rejects_bad_alpha():
    proc = run_cli("cost", "--alpha", "2")
    assert proc.returncode == 2 and "expected alpha in (0, 1]" in error_line(proc)


@pytest.fixture(scope="module")
def imagenet_export(tmp_path_factory):
    """TASK=imagenet offline: random weights, 1000 classes, calibrated on a user folder."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for synset in ("n01440764", "n01443537"):  # tench, goldfish
        (root / "val" / synset).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "val" / synset / f"{i}.png")
    (root / "photos").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(root / "photos" / f"{i}.jpg")
    out = root / "out"
    proc = run_cli("export", "--alpha", "0.25", "--res", "32", "--task", "imagenet", "--weights", "random",
                   "--calib", root / "photos", "--out", out, "--formats", "fp32,int8", "--n", "4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, out


def test_imagenet_eval_folder_gives_labels(imagenet_export):
    root, out = imagenet_export
    proc = run_cli("validate", "--alpha", "0.25", "--res", "32", "--task", "imagenet", "--out", out,
                   "--eval", root / "val")
    data = json.loads((out / "imagenet" / "mobilenet_0.25_32" / "validation.json").read_text())
    assert data["labelled"] and data["images"] == 6
    assert "top1" in data["artifacts"][0]["metrics"]
    assert proc.returncode in (0, 1)  # random weights: the gate may go either way; the figures must be there
    labels = (out / "imagenet" / "mobilenet_0.25_32" / "labels.txt").read_text().splitlines()
    assert labels[:2] == ["tench", "goldfish"] and len(labels) == 1000


def test_unlabelled_eval_folder_reports_agreement_only(imagenet_export):
    root, out = imagenet_export
    run_cli("validate", "--alpha", "0.25", "--res", "32", "--task", "imagenet", "--out", out, "--eval", root / "photos")
    data = json.loads((out / "imagenet" / "mobilenet_0.25_32" / "validation.json").read_text())
    assert not data["labelled"] and data["float"] == {}
    metrics = data["artifacts"][0]["metrics"]
    assert "top1" not in metrics and "top1_agreement" in metrics and "sqnr_db" in metrics


def test_imagenet_without_calib_calibrates_on_synthetic_data(tmp_path, monkeypatch):
    """No images offline: data-free calibration, said in one line, recorded in the manifest and the metadata."""
    from mobilenet_edge.pipeline.convert.metadata import read_metadata

    monkeypatch.setenv("MOBILENET_EDGE_CACHE", str(tmp_path / "cache"))
    proc = run_cli("export", "--alpha", "0.25", "--res", "32", "--task", "imagenet", "--weights", "random",
                   "--out", tmp_path, "--formats", "int8", "--synthetic-n", "4", "--synthetic-steps", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = [l for l in proc.stderr.splitlines() if "synthetic samples" in l]
    assert len(said) == 1 and "CALIB=" in said[0], proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "imagenet" / "mobilenet_0.25_32" / "manifest.json").read_text())
    assert manifest["calibration"]["source"].startswith("synthetic") and manifest["calibration"]["count"] == 4
    int8 = tmp_path / "imagenet" / "mobilenet_0.25_32" / "mobilenet_0.25_32_int8.tflite"
    assert "synthetic" in read_metadata(int8.read_bytes())["description"]
    assert len(list((tmp_path / "cache" / "synthetic").glob("*.npy"))) == 1


# --- exit codes: bad input 2, a converter's failure 3, a bug of the project 4 ---------------------------

def _failing_cost(exc):
    def cost_table(*args, **kwargs):
        raise exc
    return cost_table


def test_a_converter_failure_is_not_bad_input(monkeypatch, capsys):
    from mobilenet_edge.pipeline import cli
    from mobilenet_edge.pipeline.cost import table as cost
    from mobilenet_edge.pipeline.errors import ToolError

    def convert_fails(*args, **kwargs):
        try:
            raise RuntimeError("MLIR pass failed: legalize")
        except RuntimeError as exc:
            raise ToolError("expected TensorFlow's TFLite converter to convert the int8 model, received "
                            "RuntimeError: MLIR pass failed") from exc

    monkeypatch.setattr(cost, "cost_table", convert_fails)
    assert cli.main(["cost"]) == 3
    quiet = capsys.readouterr().err
    assert quiet.count("error:") == 1 and "Traceback" not in quiet and "-v shows its traceback" in quiet
    assert cli.main(["-v", "cost"]) == 3
    chain = capsys.readouterr().err
    assert "RuntimeError: MLIR pass failed: legalize" in chain and "direct cause" in chain
    assert chain.strip().splitlines()[-1].startswith("error: expected TensorFlow's TFLite converter")


def test_a_bug_is_named_a_bug(monkeypatch, capsys):
    from mobilenet_edge.pipeline import cli
    from mobilenet_edge.pipeline.cost import table as cost

    monkeypatch.setattr(cost, "cost_table", _failing_cost(TypeError("unsupported operand")))
    assert cli.main(["cost"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" in err[0] and "TypeError: unsupported operand" in err[0]
    assert "this is a bug" in err[0]


def test_demo_alphas_that_are_not_numbers_are_one_line():
    proc = run_cli("demo", "--alphas", "x", "--out", "/tmp/never-written")
    assert proc.returncode == 2
    assert "expected ALPHAS to be numbers separated by spaces, received ALPHAS='x'" in error_line(proc)


NATIVE = ("port.cc:", "absl::InitializeLog", "oneDNN custom operations", "XNNPACK delegate", "fully_quantize:",
          "use_unbounded_threadpool")


def test_the_default_run_prints_no_native_log_lines(tmp_path, monkeypatch):
    """TensorFlow's and LiteRT's C++ log lines (oneDNN notice, absl, XNNPACK) only with -v (issue 23.9)."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    args = ("export", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--formats", "int8", "--n", "8",
            "--out", tmp_path)
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    noise = [line for line in proc.stderr.splitlines() if any(n in line for n in NATIVE)]
    assert noise == [], noise
    assert "I pipeline.convert.tflite: converting" in proc.stderr  # the project's own lines stay
    loud = run_cli("-v", *args)
    assert loud.returncode == 0 and "oneDNN custom operations" in loud.stderr, loud.stderr[-2000:]
