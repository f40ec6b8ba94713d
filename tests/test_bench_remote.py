"""bench_remote against the emulated Raspberry Pi: a real sshd on 127.0.0.1 whose sessions run in an arm64
Debian userland under qemu-user (cortex-a72), built and cached by targets/pi_emulator/pi-emulator.sh.

Checks what the issue asks: aarch64 results for every artifact, ai-edge-litert for every .tflite, ARM outputs
equal to x86 outputs of the same artifacts (integer outputs within one quantization step, float within 1e-4),
tflite-runtime 2.14 + numpy<2 (on the emulated Pi and on x86), and one-line errors for an unreachable host,
a refused key, a wrong or unknown host key, a timeout and a device missing numpy, a runtime or python.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.registry import resolve_target
from mobilenet_edge.targets.ssh import bench_remote
from tests_targets import ROOT, VARIANT, assert_outputs_match, pi_emulator, run_runner, tiny_variant

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("ssh") is None,
    reason="the emulated Pi needs Linux, root (binfmt_misc, chroot, sshd) and the OpenSSH client")


@pytest.fixture(scope="module")
def pi():
    return pi_emulator()


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote") / "fashion-mnist" / VARIANT
    shutil.copytree(tiny_variant(), folder)
    return folder


@pytest.fixture(scope="module")
def x86_outputs(variant, tmp_path_factory):
    """The runner on this machine (ai-edge-litert Interpreter, onnxruntime) over the same artifacts."""
    dump = tmp_path_factory.mktemp("x86-outputs")
    tflite = sorted(variant.glob("*.tflite"))
    proc = run_runner(sys.executable, tflite, dump, "--runtime", "litert-interpreter")
    assert proc.returncode == 0, proc.stderr
    proc = run_runner(sys.executable, sorted(variant.glob("*.onnx")), dump)
    assert proc.returncode == 0, proc.stderr
    return dump


def connect(pi, **overrides):
    """The emulated Pi as a Target, from the settings its script printed (HOST=…, PORT=…, as a user gives them)."""
    settings = dict(host=pi["HOST"], port=pi["PORT"], identity=pi["IDENTITY"], known_hosts=pi["KNOWN_HOSTS"],
                    profile="pi-emulator")
    settings.update(overrides)
    return resolve_target(**settings)


def leftovers(pi) -> list[str]:
    """Remote folders bench_remote made and did not remove (the userland's /tmp, seen from the host)."""
    return sorted(p.name for p in (Path(pi["PI_EMULATOR_DIR"]) / "rootfs" / "tmp").glob("mobilenet-edge.*"))


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


@pytest.mark.slow
def test_bench_remote_on_the_emulated_pi_matches_x86(pi, variant, x86_outputs, tmp_path):
    path = bench_remote(variant, connect(pi), dump_outputs=tmp_path)
    assert path == variant / "benchmark-ssh-127.0.0.1.json"
    report = json.loads(path.read_text())
    assert report["target"] == "ssh-127.0.0.1"
    assert report["device"] == {"host": pi["HOST"], "port": pi["PORT"], "python": "python3", "profile": "pi-emulator"}
    host = report["host"]
    assert host["machine"] == "aarch64" and "Cortex-A72" in host["cpu"], host
    by_model = {r["model"]: r for r in report["results"]}
    artifacts = sorted(p.name for p in variant.iterdir() if p.suffix in (".tflite", ".onnx"))
    assert sorted(by_model) == artifacts
    for name, result in by_model.items():
        if name.endswith(".tflite"):
            # The Interpreter: a Cortex-A72 lacks LSE atomics, on which LiteRT's CompiledModel aborts.
            assert result["runtime"] == "litert-interpreter", result
            assert result["delegate"] == "XNNPACK", result  # the fake Pi /proc/cpuinfo lets XNNPACK start
        else:
            assert result["runtime"] == "onnxruntime", result
        assert result["threads"] == 2 and result["latency_ms"]["p50"] > 0
    diffs = assert_outputs_match(tmp_path, x86_outputs, artifacts)
    print("max |ARM - x86| per artifact:", diffs)
    assert leftovers(pi) == []


@pytest.mark.slow
def test_make_bench_remote_cli_against_the_emulated_pi(pi, variant):
    """What `make bench-remote HOST=... PORT=... IDENTITY=... KNOWN_HOSTS=... PROFILE=pi-emulator` runs."""
    out = variant.parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "mobilenet_edge.pipeline.cli", "bench-remote", "--alpha", "0.25", "--res", "32", "--task",
         "fashion-mnist", "--weights", "random", "--out", str(out), "--host", pi["HOST"], "--port", str(pi["PORT"]),
         "--identity", pi["IDENTITY"], "--known-hosts", pi["KNOWN_HOSTS"], "--profile", "pi-emulator",
         "--runtime", "litert"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "aarch64" in proc.stdout and "litert-interpreter" in proc.stdout, proc.stdout
    report = json.loads((variant / "benchmark-ssh-127.0.0.1.json").read_text())
    assert {r["model"] for r in report["results"]} == {p.name for p in variant.glob("*.tflite")}


@pytest.mark.slow
def test_tflite_runtime_2_14_with_numpy_1_on_the_emulated_pi_and_on_x86(pi, variant, x86_outputs, tmp_path):
    """The older-Pi-image path. ARM is compared with x86 on the same tflite-runtime release: against
    ai-edge-litert 2.3 only fp32/fp16/int8 agree that closely, dynamic-range kernels changed between releases."""
    tflite = sorted(p.name for p in variant.glob("*.tflite"))
    x86 = tmp_path / "x86"
    proc = run_runner(pi["X86_TFLITE_RUNTIME_PYTHON"], sorted(variant.glob("*.tflite")), x86, "--runtime",
                      "tflite-runtime")
    assert proc.returncode == 0, proc.stderr
    local = json.loads(proc.stdout)
    assert local["host"]["numpy"].startswith("1.") and {r["runtime"] for r in local["results"]} == {"tflite-runtime"}
    same_kernels = [n for n in tflite if "_dynamic" not in n]
    print("tflite-runtime 2.14 vs ai-edge-litert on x86:", assert_outputs_match(x86, x86_outputs, same_kernels))

    arm = tmp_path / "arm"
    path = bench_remote(variant, connect(pi, python=pi["TFLITE_RUNTIME_PYTHON"]), runtime="tflite-runtime",
                        dump_outputs=arm)
    report = json.loads(path.read_text())
    assert report["host"]["machine"] == "aarch64" and report["host"]["numpy"].startswith("1.")
    assert report["host"]["runtimes"] == {"tflite-runtime": "2.14.0"}
    assert sorted(r["model"] for r in report["results"]) == tflite
    assert {r["runtime"] for r in report["results"]} == {"tflite-runtime"}
    print("tflite-runtime 2.14, ARM vs x86:", assert_outputs_match(arm, x86, tflite))
    assert leftovers(pi) == []


# --- errors: each one line naming the cause --------------------------------------------------------------------------

def test_unreachable_port(pi, variant):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PipelineError, match=r"unreachable host") as exc:
        bench_remote(variant, connect(pi, port=port), timeout_s=30)
    assert "Connection refused" in one_line(exc)


def test_refused_key(pi, variant, tmp_path):
    key = tmp_path / "id_other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with pytest.raises(PipelineError, match=r"refused key") as exc:
        bench_remote(variant, connect(pi, identity=str(key)), timeout_s=30)
    assert "Permission denied" in one_line(exc)


def test_host_key_mismatch_and_unknown_host(pi, variant, tmp_path):
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{pi['PORT']} " + " ".join(other.with_suffix(".pub").read_text().split()[:2]) + "\n")
    with pytest.raises(PipelineError, match=r"received a different key") as exc:
        bench_remote(variant, connect(pi, known_hosts=str(wrong)), timeout_s=30)
    one_line(exc)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(PipelineError, match=r"received an unknown host; fix: ssh-keyscan") as exc:
        bench_remote(variant, connect(pi, known_hosts=str(empty)), timeout_s=30)
    one_line(exc)
    # Without strict checking the same wrong known_hosts connects: the error is now about the device.
    with pytest.raises(PipelineError, match=r"pip install tflite-runtime"):
        bench_remote(variant, connect(pi, known_hosts=str(wrong), strict_host_keys=False), runtime="tflite-runtime",
                     timeout_s=60)


def test_device_missing_a_runtime_numpy_or_python(pi, variant):
    with pytest.raises(PipelineError, match=r"expected tflite-runtime on root@127.0.0.1:\d+ \(python3, Python 3\.11") as exc:
        bench_remote(variant, connect(pi), runtime="tflite-runtime", timeout_s=60)
    assert one_line(exc).endswith("fix: python3 -m pip install tflite-runtime")
    with pytest.raises(PipelineError, match=r"expected numpy on .*aarch64.*fix: /opt/bare-python/bin/python3 -m pip "
                                            r"install numpy") as exc:
        bench_remote(variant, connect(pi, python=pi["BARE_PYTHON"]), timeout_s=60)
    one_line(exc)
    with pytest.raises(PipelineError, match=r"expected /usr/bin/python9 on .*no such command") as exc:
        bench_remote(variant, connect(pi, python="/usr/bin/python9"), timeout_s=60)
    one_line(exc)
    assert leftovers(pi) == []


@pytest.mark.slow
def test_timeout_during_the_run_still_removes_the_remote_folder(pi, variant, tmp_path):
    endless = tmp_path / "endless.toml"  # a profile whose runner cannot finish within the timeout
    endless.write_text('python = "python3"\nthreads = 1\nruntimes = ["litert"]\nwarmup = 0\nruns = 10000000\n')
    with pytest.raises(PipelineError, match=r"expected the runner \(litert-interpreter\) .* received a timeout") as exc:
        bench_remote(variant, connect(pi, profile=str(endless)), runtime="litert", timeout_s=25)
    one_line(exc)
    assert leftovers(pi) == []
