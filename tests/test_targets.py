"""targets/: device profiles, runtime planning, every target kind of the registry, and bench_local on a tiny real
variant."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from mobilenet_edge.benchmarks.runtimes import also_measured
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets import plan
from mobilenet_edge.targets.local import bench_local
from mobilenet_edge.targets.profiles import available_profiles, load_profile
from mobilenet_edge.pipeline.config import DeviceProfile
from mobilenet_edge.targets.registry import KINDS, resolve_target
from mobilenet_edge.targets.ssh import Ssh
from mobilenet_edge.targets.target import Kind
from tests_targets import VARIANT, tiny_variant


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# --- profiles -------------------------------------------------------------------------------------------------------

def test_every_shipped_profile_loads():
    names = available_profiles()
    assert {"raspberry-pi-4", "raspberry-pi-5", "x86-generic", "pi-emulator"} <= set(names)
    for name in names:
        profile = load_profile(name)
        assert profile.name == name and profile.python and profile.runtimes
    pi4 = load_profile("raspberry-pi-4")
    assert (pi4.arch, pi4.threads, pi4.runtimes[0]) == ("aarch64", 4, "litert")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pi4.threads = 1


def test_profile_errors_are_one_line(tmp_path):
    with pytest.raises(PipelineError, match="expected a profile among") as exc:
        load_profile("raspberry-pi-9")
    one_line(exc)
    bad = tmp_path / "bad.toml"
    bad.write_text('python = "python3"\ncores = 4\n')
    with pytest.raises(PipelineError, match=r"received \['cores'\]"):
        load_profile(bad)
    bad.write_text('runtimes = ["tensorflow"]\n')
    with pytest.raises(PipelineError, match="expected runtimes among"):
        load_profile(str(bad))
    with pytest.raises(PipelineError, match="expected threads >= 1"):
        DeviceProfile(name="x", threads=0)


# --- planning: which runtime runs which artifact --------------------------------------------------------------------

def _info(modules, numpy="2.4.6", machine="aarch64", features=("fp", "asimd", "atomics")):
    full = {"ai_edge_litert": None, "tflite_runtime": None, "onnxruntime": None, **modules}
    return plan.PythonInfo("3.11.2", machine, numpy, None if numpy else "ModuleNotFoundError: numpy", full,
                           tuple(features) if features is not None else None)


ARTIFACTS = [Path(f"m_{p}.tflite") for p in ("fp32", "int8")] + [Path("m_fp32.onnx")]


def test_plan_follows_the_preference_among_installed_runtimes():
    runs = plan.plan_runs(ARTIFACTS, _info({"tflite_runtime": "2.14.0", "onnxruntime": "1.32.0"}, numpy="1.26.4"))
    assert [(r.runtime, [m.name for m in r.models]) for r in runs] == [
        ("tflite-runtime", ["m_fp32.tflite", "m_int8.tflite"]), ("onnxruntime", ["m_fp32.onnx"])]
    runs = plan.plan_runs(ARTIFACTS, _info({"ai_edge_litert": "2.3.0", "onnxruntime": "1.32.0"}), runtime="onnxruntime")
    assert [(r.runtime, len(r.models)) for r in runs] == [("onnxruntime", 1)]


def test_plan_names_the_pip_command_for_a_missing_runtime_or_numpy():
    with pytest.raises(PipelineError, match=r"fix: python3 -m pip install onnxruntime") as exc:
        plan.plan_runs(ARTIFACTS, _info({"ai_edge_litert": "2.3.0"}), python="python3", where="pi@pi4")
    assert "pi@pi4" in one_line(exc)
    with pytest.raises(PipelineError, match=r"expected tflite-runtime .*fix: py -m pip install tflite-runtime"):
        plan.plan_runs(ARTIFACTS, _info({"ai_edge_litert": "2.3.0"}), runtime="tflite-runtime", python="py")
    with pytest.raises(PipelineError, match=r"pip install 'numpy<2'"):
        plan.plan_runs(ARTIFACTS, _info({"tflite_runtime": "2.14.0"}), runtime="tflite-runtime")
    with pytest.raises(PipelineError, match=r"expected numpy on .*fix: python -m pip install numpy"):
        plan.plan_runs(ARTIFACTS, _info({"ai_edge_litert": "2.3.0"}, numpy=None))
    with pytest.raises(PipelineError, match="expected runtime auto or one of"):
        plan.plan_runs(ARTIFACTS, _info({"ai_edge_litert": "2.3.0"}), runtime="tensorflow")


def test_plan_avoids_compiled_model_on_arm_without_lse_atomics():
    pi4 = _info({"ai_edge_litert": "2.3.0", "onnxruntime": "1.32.0"}, features=("fp", "asimd", "evtstrm", "crc32", "cpuid"))
    assert pi4.arm_without_lse
    assert plan.plan_runs(ARTIFACTS, pi4)[0].runtime == "litert-interpreter"
    assert plan.plan_runs(ARTIFACTS, pi4, runtime="litert")[0].runtime == "litert-interpreter"
    with pytest.raises(PipelineError, match="LSE atomics"):
        plan.plan_runs(ARTIFACTS, pi4, runtime="litert-compiled")
    pi5 = _info({"ai_edge_litert": "2.3.0", "onnxruntime": "1.32.0"})
    x86 = _info({"ai_edge_litert": "2.3.0", "onnxruntime": "1.32.0"}, machine="x86_64", features=None)
    assert plan.plan_runs(ARTIFACTS, pi5)[0].runtime == plan.plan_runs(ARTIFACTS, x86)[0].runtime == "litert"


def test_ssh_rejects_option_like_hosts_and_bad_ports():
    with pytest.raises(PipelineError, match="expected HOST"):
        Ssh("-oProxyCommand=touch /tmp/pwned")
    with pytest.raises(PipelineError, match="expected HOST"):
        Ssh("pi@host; rm -rf ~")
    with pytest.raises(PipelineError, match="expected PORT"):
        Ssh("pi@raspberrypi.local", port=70000)
    with pytest.raises(PipelineError, match="expected IDENTITY"):
        Ssh("pi@raspberrypi.local", identity="/nonexistent/key")


# --- bench_local on a real variant ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """A private copy of the tiny variant, so that written benchmark files do not leak between modules."""
    folder = tmp_path_factory.mktemp("local") / "fashion-mnist" / VARIANT
    shutil.copytree(tiny_variant(), folder)
    return folder


def rows_of(report: dict) -> list[tuple[str, str]]:
    """(model, runtime) per result, runtime as its member's first name (litert-compiled -> litert)."""
    return [(r["model"], "litert" if r["runtime"].startswith("litert") else r["runtime"]) for r in report["results"]]


def expected_rows(variant: Path) -> list[tuple[str, str]]:
    """Every artifact once with its container's first runtime, and each .onnx file again with every runtime
    measured beside ONNX Runtime where installed (OpenVINO, runtimes.also_measured)."""
    files = sorted(p.name for p in variant.iterdir() if p.suffix in (".tflite", ".onnx"))
    rows = [(f, "onnxruntime" if f.endswith(".onnx") else "litert") for f in files]
    rows += [(f, r) for f in files if f.endswith(".onnx") for r in also_measured()]
    return sorted(rows)


def test_bench_local_runs_every_artifact(variant):
    path = bench_local(variant, threads=1, runs=5)
    assert path == variant / "benchmark-local.json"
    report = json.loads(path.read_text())
    assert report["target"] == "local" and report["host"]["machine"]
    assert sorted(rows_of(report)) == expected_rows(variant)
    by_model = {r["model"]: r for r in report["results"] if r["runtime"] not in also_measured()}
    for name, result in by_model.items():
        assert result["runtime"].startswith("onnxruntime" if name.endswith(".onnx") else "litert"), result
    for result in report["results"]:
        assert result["threads"] == 1 and result["runs"] >= 5 and result["latency_ms"]["p50"] > 0
    assert by_model[f"{VARIANT}_int8.tflite"]["input_dtype"] == "uint8"
    assert not list(variant.glob(".*")), "no temporary file left behind"


def test_bench_local_with_a_profile_and_one_runtime(variant):
    report = json.loads(bench_local(variant, runtime="onnxruntime", runs=3, profile="x86-generic").read_text())
    assert report["profile"] == "x86-generic"
    assert [(r["model"], r["runtime"]) for r in report["results"]] == [(f"{VARIANT}_fp32.onnx", "onnxruntime")]


def test_bench_local_errors_are_one_line(variant, tmp_path):
    with pytest.raises(PipelineError, match="expected .tflite or .onnx artifacts") as exc:
        bench_local(tmp_path)
    one_line(exc)
    with pytest.raises(PipelineError, match="no such folder"):
        bench_local(tmp_path / "missing")
    with pytest.raises(PipelineError, match="expected threads >= 1"):
        bench_local(variant, threads=0)
    if importlib.util.find_spec("tflite_runtime") is None:  # as in the project's venv
        with pytest.raises(PipelineError, match="pip install tflite-runtime") as exc:
            bench_local(variant, runtime="tflite-runtime")
        one_line(exc)


# --- the target registry --------------------------------------------------------------------------------------------

@pytest.fixture
def emulator_settings(tmp_path, monkeypatch):
    """pi-emulator.sh's settings in a folder of this test (its key and known_hosts as the script makes them), so
    the kind resolves without the emulator built."""
    ssh = tmp_path / "pi-emulator" / "ssh"
    ssh.mkdir(parents=True)
    for name in ("id_ed25519", "known_hosts"):
        (ssh / name).write_text("")
    monkeypatch.setenv("PI_EMULATOR_DIR", str(tmp_path / "pi-emulator"))


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_every_target_kind_resolves_has_a_probe_and_the_local_one_runs_a_tiny_model(kind, variant, emulator_settings):
    """Each member of targets.registry.KINDS: its user-facing spelling resolves to it (as TARGETS= and HOST= give
    it), it brings its own probe, bench and predict, and this machine runs a tiny model through it."""
    target = resolve_target(kind.example)
    assert target.kind is kind and target.name == kind.example
    assert target.file == f"benchmark-{target.label}.json" and target.python and target.runtimes
    for method in ("make", "probe", "bench", "predict"):
        assert getattr(type(kind), method) is not getattr(Kind, method), f"{kind.name} lacks its own {method}"
    if kind.name != "local":
        assert resolve_target(host=kind.example).kind is kind and not target.is_local
        return
    info = target.probe()
    assert info.numpy and info.modules["onnxruntime"]
    report = json.loads(target.bench(variant, threads=1, runs=2).read_text())
    assert report["target"] == "local"
    assert sorted(rows_of(report)) == expected_rows(variant)


def test_resolve_target_errors_are_one_line(tmp_path):
    with pytest.raises(PipelineError, match=r"expected a target name or HOST, received both"):
        resolve_target("local", host="pi@host")
    with pytest.raises(PipelineError, match=r"expected `local` alone"):
        resolve_target("local:somewhere")
    with pytest.raises(PipelineError, match=r"expected ssh:<user@host or alias>"):
        resolve_target("ssh:")
    with pytest.raises(PipelineError, match=r"expected a python command on this machine"):
        resolve_target("local", python=str(tmp_path / "no-python")).probe()
    odd = tmp_path / "odd.toml"
    odd.write_text('host = "pi@odd"\nkind = "carrier-pigeon"\n')
    with pytest.raises(PipelineError, match=r"expected kind among .* received 'carrier-pigeon'") as exc:
        resolve_target(str(odd))
    one_line(exc)
    assert resolve_target(profile="x86-generic").is_local  # neither name nor HOST, a profile without host: here
