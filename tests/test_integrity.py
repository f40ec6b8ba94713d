"""The manifest is the truth about its folder: it changes with each artifact, names its variant exactly, is
checked against the files by the report, and a damaged one costs one line and is rebuilt by the next export.

Built on the session's tiny export (conftest.tiny_export), copied per test; the re-exports convert int8 or
fp32 only (a few seconds each)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import error_line, run_cli
from mobilenet_edge.pipeline.artifacts import sha256_file

TASK = "fashion-mnist"


@pytest.fixture
def out(tiny_export, tmp_path) -> Path:
    """A private copy of the tiny export's OUT (alpha 0.25, 32 px, every format + per-tensor int8)."""
    copy = tmp_path / "out"
    shutil.copytree(tiny_export.variant_dir.parents[1], copy)
    return copy


def folder_of(out: Path) -> Path:
    return out / TASK / "mobilenet_0.25_32"


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def entry(folder: Path, suffix: str) -> dict | None:
    return next((e for e in manifest(folder)["artifacts"] if e["file"].endswith(suffix)), None)


def export(out: Path, formats: tuple, n: int = 16):
    from mobilenet_edge.pipeline.config import ExportConfig, QuantConfig, Variant
    from mobilenet_edge.pipeline.recipe import export_variant
    from mobilenet_edge.pipeline.config import RecipeConfig

    return export_variant(RecipeConfig(variant=Variant(0.25, 32, TASK, "reference"),
                                       export=ExportConfig(formats=formats, out=out), quant=QuantConfig(num_samples=n)))


def validate(folder: Path):
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.config import ValidationConfig
    from mobilenet_edge.pipeline.validate import validate as run

    return run(folder, resolve_task(TASK), ValidationConfig(limit=50))


def summary_of(out: Path) -> dict:
    from mobilenet_edge.pipeline.report import write_report

    return json.loads(write_report(out, checkpoints=None).summary.read_text())


def test_an_interrupted_reexport_leaves_only_true_entries(out):
    """A re-export with another N that stops after int8.tflite was replaced (here: fp32.onnx, converted next in
    the format registry's order, cannot be written — the same exit an interruption takes): the manifest names the
    new file's sha256 and calibration, has no entry for the file that was not written, and validate + report show
    only figures of the files on disk."""
    from mobilenet_edge.pipeline import formats

    order = [f.name for f in formats.all_formats()]
    assert order.index("int8") < order.index("onnx")  # the premise: int8 is written before fp32.onnx is tried
    folder = folder_of(out)
    old = entry(folder, "_int8.tflite")
    assert manifest(folder)["calibration"]["count"] == 16
    (folder / "mobilenet_0.25_32_fp32.onnx").unlink()
    (folder / "mobilenet_0.25_32_fp32.onnx").mkdir()  # os.replace onto a folder fails: the export stops here
    with pytest.raises(OSError):
        export(out, ("int8", "onnx"), n=8)
    doc = manifest(folder)
    new = entry(folder, "_int8.tflite")
    assert new["sha256"] == sha256_file(folder / new["file"]) != old["sha256"]
    assert doc["calibration"]["count"] == 8
    assert entry(folder, "_fp32.onnx") is None and entry(folder, "_int8_per_tensor.tflite") is None
    assert entry(folder, "_int8.onnx") is None  # made with the N=16 calibration the manifest no longer records
    assert new["calibration_sha256"] == doc["calibration"]["sha256"]
    for e in doc["artifacts"]:  # every entry left is true of its file
        assert sha256_file(folder / e["file"]) == e["sha256"], e["file"]

    validate(folder)
    rows = json.loads((folder / "validation.json").read_text())["artifacts"]
    assert {r["file"]: r["sha256"] for r in rows} == {e["file"]: e["sha256"] for e in doc["artifacts"]}
    summary = summary_of(out)
    records = [r for r in summary["records"] if not r["reference"]]
    assert {r["file"] for r in records} == {e["file"] for e in doc["artifacts"]}
    assert all(r["on_disk"] == "ok" and r["top1_agreement"] is not None for r in records)


def test_the_report_checks_every_row_against_its_file(out):
    folder = folder_of(out)
    validate(folder)
    name = "mobilenet_0.25_32"
    (folder / f"{name}_int8.tflite").write_bytes(b"")  # emptied
    (folder / f"{name}_fp16.tflite").unlink()  # deleted
    # dynamic replaced by other bytes and listed as such (a re-export not validated since): its row is stale
    shutil.copy(folder / f"{name}_int8_per_tensor.tflite", folder / f"{name}_dynamic.tflite")
    doc = manifest(folder)
    for e in doc["artifacts"]:
        if e["file"] == f"{name}_dynamic.tflite":
            e["sha256"] = sha256_file(folder / e["file"])
    (folder / "manifest.json").write_text(json.dumps(doc))
    fp32 = f"{name}_fp32.tflite"
    bench = {"target": "local", "host": {"machine": "x86_64", "cpu": "test", "cores": 2}, "results": [
        {"model": f, "runtime": "litert", "threads": 1, "bytes": 1, "init_ms": 1.0, "sha256": sha,
         "latency_ms": {"p50": p50, "p90": p50}}
        for f, sha, p50 in ((fp32, sha256_file(folder / fp32), 2.0), (f"{name}_int8.tflite", "0" * 64, 0.5),
                            (f"{name}_dynamic.tflite", "1" * 64, 0.1))]}
    (folder / "benchmark-local.json").write_text(json.dumps(bench))

    summary = summary_of(out)
    rows = {r["file"]: r for r in summary["records"]}
    assert rows[f"{name}_int8.tflite"]["on_disk"] == "empty" and rows[f"{name}_int8.tflite"]["latency_p50_ms"] == {}
    assert rows[f"{name}_fp16.tflite"]["on_disk"] == "missing" and rows[f"{name}_fp16.tflite"]["bytes"] is None
    dynamic = rows[f"{name}_dynamic.tflite"]
    assert dynamic["on_disk"] == "ok" and dynamic["top1_agreement"] is None and dynamic["latency_p50_ms"] == {}
    assert rows[fp32]["latency_p50_ms"] and rows[fp32]["top1_agreement"] is not None
    ship = summary["ship"][0]
    assert ship["smallest"] not in {f"{name}_int8.tflite", f"{name}_fp16.tflite", f"{name}_dynamic.tflite"}
    assert set(ship["fastest"].values()) == {fp32}
    problems = "\n".join(summary["problems"])
    for text in (f"{name}_int8.tflite: empty file on disk", f"{name}_fp16.tflite: missing on disk",
                 f"{name}_dynamic.tflite: validation.json measured another file",
                 f"{name}_dynamic.tflite: benchmark-local.json timed another file"):
        assert text in problems, problems
    report = (out / "report.md").read_text()
    assert "(missing on disk)" in report and "(empty file on disk)" in report


DAMAGE = {
    "invalid JSON": lambda doc: '{"schema": 1, "variant": ',
    "empty": lambda doc: "",
    "a key missing": lambda doc: json.dumps({k: v for k, v in doc.items() if k != "artifacts"}),
    "another variant's": lambda doc: json.dumps({**doc, "variant": {**doc["variant"], "name": "mobilenet_0.25_48"}}),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_manifest_is_one_line(out, damage):
    folder = folder_of(out)
    path = folder / "manifest.json"
    path.write_text(DAMAGE[damage](manifest(folder)))
    proc = run_cli("validate", "--task", TASK, "--alpha", "0.25", "--res", "32", "--out", out)
    line = error_line(proc)
    assert proc.returncode == 2 and line.startswith(f"error: expected {path} to be the manifest of mobilenet_0.25_32")
    assert "export the variant again" in line
    assert any(str(path) in p and "export the variant again" in p for p in summary_of(out)["problems"])


def test_the_next_export_rebuilds_a_damaged_manifest(out, caplog):
    folder = folder_of(out)
    (folder / "manifest.json").write_text("not json")
    export(out, ("fp32",))
    doc = manifest(folder)
    assert [e["file"] for e in doc["artifacts"]] == ["mobilenet_0.25_32_fp32.tflite"]
    assert doc["artifacts"][0]["sha256"] == sha256_file(folder / "mobilenet_0.25_32_fp32.tflite")
    assert "rebuilding it from the files this export writes" in caplog.text


def test_two_alphas_that_print_alike_get_their_own_folders():
    from mobilenet_edge.pipeline.config import Variant

    names = {a: Variant(a, 64, TASK, "random").name for a in (0.25, 0.251, 0.2501, 0.5, 1.0)}
    assert names == {0.25: "mobilenet_0.25_64", 0.251: "mobilenet_0.251_64", 0.2501: "mobilenet_0.2501_64",
                     0.5: "mobilenet_0.50_64", 1.0: "mobilenet_1.00_64"}
    assert Variant(0.751, 96, TASK, "random", arch="v2").name == "mobilenet_v2_0.751_96"


def test_a_reference_checkpoint_is_not_used_for_an_alpha_that_prints_alike():
    from mobilenet_edge.pipeline import build
    from mobilenet_edge.pipeline.errors import PipelineError

    assert build.reference_checkpoint(TASK, 0.25).name.startswith("mobilenet_0.25_")
    with pytest.raises(PipelineError, match="expected a reference checkpoint"):
        build.reference_checkpoint(TASK, 0.251)


ARTIFACT_SUFFIXES = (".tflite", ".onnx")


def unlisted(folder: Path) -> set[str]:
    """Artifact files on disk that the manifest does not list (hidden scratch folders included)."""
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.suffix in ARTIFACT_SUFFIXES or (p.is_dir() and p.name.startswith("."))}
    return on_disk - {e["file"] for e in manifest(folder)["artifacts"]}


def test_a_refused_export_leaves_the_manifest_byte_identical(out, tmp_path):
    """CALIB of files that are no images: exit 2 ("nothing done") and manifest.json exactly as it was."""
    from mobilenet_edge.pipeline.config import ExportConfig, QuantConfig, RecipeConfig, Variant
    from mobilenet_edge.pipeline.errors import PipelineError
    from mobilenet_edge.pipeline.recipe import export_variant

    folder = folder_of(out)
    before = (folder / "manifest.json").read_bytes()
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(3):
        (junk / f"photo{i}.jpg").write_text("not an image")
    with pytest.raises(PipelineError, match="readable image"):
        export_variant(RecipeConfig(variant=Variant(0.25, 32, TASK, "reference"),
                                    export=ExportConfig(formats=("int8",), out=out),
                                    quant=QuantConfig(num_samples=16, calib_dir=str(junk))))
    assert (folder / "manifest.json").read_bytes() == before
    assert not unlisted(folder)


@pytest.mark.parametrize("formats, n", [(("int8",), 16), (("int8",), 8), (("fp32", "onnx-int8"), 8)])
def test_every_artifact_on_disk_is_listed_after_a_reexport(out, formats, n):
    """`make int8` after `make all` (the per-tensor file), another N (the ONNX int8 file of the old calibration):
    each file on disk is listed, or was removed when its format or calibration was replaced."""
    folder = folder_of(out)
    assert not unlisted(folder)
    export(out, formats, n=n)
    assert not unlisted(folder), unlisted(folder)
    for e in manifest(folder)["artifacts"]:
        assert sha256_file(folder / e["file"]) == e["sha256"], e["file"]


def test_ctrl_c_during_calibration_leaves_the_manifest_byte_identical(out, monkeypatch):
    """Ctrl-C while the samples are made (data-free calibration takes minutes): nothing was replaced yet."""
    from mobilenet_edge.pipeline import recipe

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(recipe, "calibration_set", interrupted)
    folder = folder_of(out)
    before = (folder / "manifest.json").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        export(out, ("int8",), n=8)
    assert (folder / "manifest.json").read_bytes() == before
    assert not unlisted(folder)


def test_an_entry_without_sha256_is_named_and_the_rest_kept(out, caplog):
    folder = folder_of(out)
    doc = manifest(folder)
    bad = next(e for e in doc["artifacts"] if e["file"].endswith("_dynamic.tflite"))
    del bad["sha256"]
    (folder / "manifest.json").write_text(json.dumps(doc))
    proc = run_cli("validate", "--task", TASK, "--alpha", "0.25", "--res", "32", "--out", out, "--limit", "20")
    line = error_line(proc)
    assert proc.returncode == 2 and f"({bad['file']}) without sha256" in line, line
    export(out, ("fp32",))
    kept = {e["file"] for e in manifest(folder)["artifacts"]}
    assert f"({bad['file']}) without sha256" in caplog.text
    assert {e["file"] for e in doc["artifacts"]} - {bad["file"]} <= kept  # the valid entries survive the rebuild


def test_bench_considers_the_listed_verified_files_and_names_a_stray_one(out, caplog):
    """An unlisted 0-byte .onnx (and a listed file changed since) is left out with one warning; the rest run."""
    from mobilenet_edge.targets.local import bench_local
    from mobilenet_edge.targets.plan import artifacts_of

    folder = folder_of(out)
    (folder / "stray.onnx").write_bytes(b"")
    changed = folder / "mobilenet_0.25_32_fp16.tflite"
    data = changed.read_bytes()
    changed.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    files = [p.name for p in artifacts_of(folder)]
    listed = sorted(e["file"] for e in manifest(folder)["artifacts"] if e["file"] != changed.name)
    assert files == listed
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "stray.onnx" in warnings[0] and changed.name in warnings[0], warnings
    report = json.loads(bench_local(folder, threads=1, runtime="litert", runs=2).read_text())
    assert {r["model"] for r in report["results"]} == {f for f in listed if f.endswith(".tflite")}
