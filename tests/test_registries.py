"""Every member of the runtime registry (benchmarks/runtimes/) and of the format registry (pipeline/formats/).

Runtimes: each module runs in the standalone runner, copied with its folder where mobilenet_edge cannot be
imported, on a tiny file of its container, and reports its fast-path audit (or, not installed here, names its
pip fix). Formats: each converted the tiny model (alpha 0.25, 32 px; the session's `tiny_export`), its file is
listed under its names, and its aliases resolve.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from mobilenet_edge.benchmarks import runtimes
from mobilenet_edge.benchmarks.runtimes._probe import probe
from mobilenet_edge.pipeline import formats

AUDIT_KEYS = {"runtime", "ops", "partitions", "fast", "slow", "edge", "on_fast_path"}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory) -> tuple[Path, dict]:
    """runner.py and runtimes/ copied alone, and an environment where `import mobilenet_edge` fails."""
    folder = tmp_path_factory.mktemp("standalone")
    shutil.copy(ROOT / "benchmarks" / "runner.py", folder)
    shutil.copytree(ROOT / "benchmarks" / "runtimes", folder / "runtimes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    poison = folder / "poison" / "mobilenet_edge"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("raise ImportError('the standalone runner must not import mobilenet_edge')\n")
    return folder, {**os.environ, "PYTHONPATH": str(poison.parent)}


def _file_of(container: str, tiny_export) -> Path:
    return next(p for p in sorted(tiny_export.variant_dir.glob(f"*_fp32.{container}")))


def _usable_here(module) -> bool:
    installed = importlib.util.find_spec(module.MODULE) is not None
    check = getattr(module, "incompatible", None)
    return installed and not (check and check(probe(())))


@pytest.mark.parametrize("name", runtimes.MEMBERS)
def test_every_runtime_runs_standalone_and_reports_its_audit(name, standalone, tiny_export):
    module = importlib.import_module(f"mobilenet_edge.benchmarks.runtimes.{name}")
    folder, env = standalone
    model = _file_of(module.CONTAINER, tiny_export)
    proc = subprocess.run([sys.executable, str(folder / "runner.py"), str(model), "--runtime", module.NAMES[0],
                           "--runs", "3", "--warmup", "1", "--ci-target", "0", "--threads", "1"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=folder)
    if not _usable_here(module):  # e.g. tflite-runtime, which needs numpy 1: the runner names the fix
        assert proc.returncode == 2, proc.stderr
        assert "fix:" in proc.stderr and module.PIP in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["runtime"] in module.NAMES
    assert result["fast_path"]["runtime"] == module.FAST_PATH
    assert module.version() and result["runtime_version"] == module.version()
    audit = module.audit(model)  # the pipeline's audit of the same file, from the same module
    assert set(audit) == AUDIT_KEYS and audit["runtime"] == module.FAST_PATH and audit["on_fast_path"]


def test_registry_names_feed_the_runner_the_probe_and_the_copy():
    from mobilenet_edge.targets import plan

    members = runtimes.members()
    names = [n for m in members for n in m.NAMES]
    assert len(names) == len(set(names))  # a runner name belongs to one runtime
    assert set(plan.RUNTIME_FORMAT) == set(names) and set(plan.DEFAULT_PREFERENCE) == {m.NAMES[0] for m in members}
    found = json.loads(subprocess.run([sys.executable, "-c", plan.PROBE], capture_output=True, text=True,
                                      timeout=60, check=True).stdout)
    assert set(found["modules"]) == {m.MODULE for m in members}
    copied = {name for _, name in plan.runner_files()}
    assert {"runner.py", "runtimes", "runtimes/__init__.py"} | {f"runtimes/{m}.py" for m in runtimes.MEMBERS} <= copied
    help_text = subprocess.run([sys.executable, str(plan.RUNNER), "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    assert all(n in help_text for n in names)


@pytest.mark.parametrize("fmt", formats.all_formats(), ids=lambda f: f.key)
def test_every_format_converts_and_its_names_resolve(fmt, tiny_export):
    from mobilenet_edge.pipeline.manifest import entry_format, read_manifest

    assert formats.get(fmt.key) is fmt and all(formats.get(a) is fmt for a in fmt.aliases)
    assert fmt.key == f"{fmt.container}-{fmt.precision}" and fmt.runtimes
    folder = tiny_export.variant_dir
    entry = next(e for e in read_manifest(folder)["artifacts"] if e["file"] == fmt.file_name(folder.name))
    assert (entry["format"], entry["precision"], entry_format(entry)) == (fmt.container, fmt.precision, fmt.name)
    assert ("calibration_sha256" in entry) == fmt.calibrated
    assert entry["fast_path"]["runtime"] in {runtimes.module_of(n).FAST_PATH for n in fmt.runtimes}


def test_configs_take_keys_and_aliases_and_keep_the_record_names():
    from mobilenet_edge.pipeline.config import ExportConfig, SweepConfig
    from mobilenet_edge.pipeline.errors import PipelineError

    assert ExportConfig(formats=("tflite-int8", "onnx-fp32", "int8")).formats == ("int8", "onnx")
    assert SweepConfig(formats=("tflite-fp16", "onnx-int8")).formats == ("fp16", "onnx-int8")
    with pytest.raises(PipelineError, match=r"expected formats among fp32, fp16, .*received tflite-int4"):
        ExportConfig(formats=("tflite-int4",))


def test_validation_adds_a_row_per_extra_runtime(tiny_export, tmp_path):
    """`runtimes=`: each artifact a listed runtime runs gets one more row, named by its runtime."""
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.config import ValidationConfig
    from mobilenet_edge.pipeline.validate import validate

    folder = tmp_path / tiny_export.variant_dir.parent.name / tiny_export.variant_dir.name
    shutil.copytree(tiny_export.variant_dir, folder)
    result = validate(folder, resolve_task("fashion-mnist"), ValidationConfig(limit=32, runtimes=("onnxruntime",)))
    rows = json.loads(result.path.read_text())["artifacts"]
    extra = {r["file"]: r for r in rows if r.get("runtime") == "onnxruntime"}
    default = {r["file"]: r for r in rows if "runtime" not in r}
    assert sorted(extra) == sorted(f for f in default if f.endswith(".onnx")) and extra
    for file, row in extra.items():  # the same runtime twice: the same outputs
        assert np.isclose(row["metrics"]["sqnr_db"], default[file]["metrics"]["sqnr_db"])
