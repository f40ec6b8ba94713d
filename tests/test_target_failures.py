"""Exit codes per failure class, on every target that runs the runner (this machine and the emulated Pi).

A runner that crashes (dies of a signal, or ends with a code that is not its own refusal) is a ToolError:
exit 3. Its own refusal of a file (`error: expected …`, exit 2), a missing runtime (with the pip command) and
a bad or unreachable host are bad input: PipelineError, exit 2. The crashing runner is a real process that
kills itself: a "python" that runs everything else (the probe) on the real python and dies when handed
runner.py. No mocks: real subprocesses here, real ssh into the emulated Pi there.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import sys

import pytest

from conftest import error_line, run_cli
from mobilenet_edge.pipeline.errors import PipelineError, ToolError
from mobilenet_edge.targets.registry import resolve_target
from tests_targets import VARIANT, pi_emulator, tiny_variant

ON_PI = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("ssh") is None,
    reason="the emulated Pi needs Linux, root (binfmt_misc, chroot, sshd) and the OpenSSH client")
TARGETS = ["local", pytest.param("pi-emulator", marks=ON_PI)]
# How the runner ends, and what the one-line ToolError says about it (here | on the emulated Pi under qemu).
CRASHES = {
    "segfault": ("kill -SEGV $$", r"SIGSEGV \(killed by signal 11\)|exit status 255 \(killed by a signal\): 'qemu: "
                                  r"uncaught target signal 11"),
    "killed": ("kill -KILL $$", r"SIGKILL \(killed by signal 9\)|exit status 255 \(killed by a signal\)"),
    "traceback": ("echo 'RuntimeError: the runtime failed' >&2; exit 1", r"exit status 1: 'RuntimeError: the runtime"),
}


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    folder = tmp_path_factory.mktemp("failures") / "fashion-mnist" / VARIANT
    folder.mkdir(parents=True)
    for name in (f"{VARIANT}_int8.tflite", f"{VARIANT}_fp32.onnx"):
        shutil.copy(tiny_variant() / name, folder / name)
    return folder


def target_of(where: str, tmp_path, crash: str | None = None, **given):
    """`local` or `pi-emulator`; with `crash`, its python runs `crash` instead of runner.py."""
    if where == "pi-emulator":
        pi_emulator()  # built and started (cached)
    if crash is not None:
        script = f'case "$1" in *runner.py) {crash} ;; esac; exec {{python}} "$@"'
        if where == "local":
            wrapper = tmp_path / "python"
            wrapper.write_text("#!/bin/sh\n" + script.format(python=shlex.quote(sys.executable)) + "\n")
            wrapper.chmod(0o755)
            given["python"] = str(wrapper)
        else:
            given["python"] = shlex.join(["sh", "-c", script.format(python="python3"), "sh"])
    return resolve_target(where, **given)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


# Every crash on this machine (a second each); on the emulated Pi (seconds per ssh step under qemu) a signal
# (ssh reports 255) in the benchmark and an unexpected exit code in the predictions.
CASES = [*(("local", c, c) for c in CRASHES), pytest.param("pi-emulator", "segfault", "traceback", marks=ON_PI)]


@pytest.mark.parametrize("where, bench_crash, predict_crash", CASES)
def test_a_crashing_runner_is_a_tool_error_in_bench_and_predict(where, bench_crash, predict_crash, variant, tmp_path):
    action, said = CRASHES[bench_crash]
    target = target_of(where, tmp_path, action)
    with pytest.raises(ToolError, match=rf"expected the runner \(litert(-interpreter)?\) to finish on .*received ({said})"
                       ) as exc:
        target.bench(variant, runtime="litert", runs=1, timeout_s=120)
    assert one_line(exc).endswith("the runtime crashed on an accepted artifact")
    inputs = tmp_path / "inputs"  # the device validation's path: runner.py --predict
    inputs.mkdir()
    (inputs / "inputs.json").write_text(json.dumps({}))
    action, said = CRASHES[predict_crash]
    target = target_of(where, tmp_path, action)
    with pytest.raises(ToolError, match=rf"expected the runner --predict \(onnxruntime\) to finish on .*({said})") as exc:
        target.predict([variant / f"{VARIANT}_fp32.onnx"], inputs, timeout_s=120)
    one_line(exc)


@pytest.mark.parametrize("where", TARGETS)
def test_the_runners_refusal_and_a_missing_runtime_are_bad_input(where, variant, tmp_path):
    target = target_of(where, tmp_path)
    broken = tmp_path / "fashion-mnist" / VARIANT
    broken.mkdir(parents=True)
    (broken / f"{VARIANT}_int8.tflite").write_bytes(b"TFL3 not a flatbuffer")
    with pytest.raises(PipelineError, match=r"received 'error: expected a model that litert-interpreter can load") as exc:
        target.bench(broken, runtime="litert-interpreter", runs=1, timeout_s=120)
    assert not isinstance(exc.value, ToolError), one_line(exc)
    if where != "local" or _has_tflite_runtime():
        return  # the device's missing runtime: test_cli_exit_codes_on_the_emulated_pi, test_bench_remote
    with pytest.raises(PipelineError, match=r"expected tflite-runtime on .*fix: .* -m pip install tflite-runtime") as exc:
        target.bench(variant, runtime="tflite-runtime", runs=1, timeout_s=120)
    assert not isinstance(exc.value, ToolError), one_line(exc)


def _has_tflite_runtime() -> bool:
    import importlib.util

    return importlib.util.find_spec("tflite_runtime") is not None


def test_a_bad_or_unreachable_host_is_bad_input(variant):
    with pytest.raises(PipelineError, match=r"expected HOST as host or user@host"):
        resolve_target(host="pi@host;reboot")
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PipelineError, match=r"unreachable host") as exc:
        resolve_target(host="127.0.0.1", port=port).bench(variant, timeout_s=30)
    assert not isinstance(exc.value, ToolError), one_line(exc)


def _cli(variant, *args):
    return run_cli("bench-remote", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--weights", "random",
                   "--out", variant.parents[1], *args)


def test_cli_bad_host_exits_2(variant, tmp_path):
    proc = _cli(variant, "--host", "pi@host;reboot")
    assert proc.returncode == 2 and "expected HOST as host or user@host" in error_line(proc)
    proc = _cli(variant)
    assert proc.returncode == 2 and "expected --host, received none" in error_line(proc)
    with socket.socket() as s:  # a PROFILE that names its device stands for HOST; nothing listens at its port
        s.bind(("127.0.0.1", 0))
        device = tmp_path / "gone.toml"
        device.write_text(f'host = "pi@127.0.0.1"\nport = {s.getsockname()[1]}\n')
    proc = _cli(variant, "--profile", device)
    assert proc.returncode == 2 and "expected an ssh server at pi@127.0.0.1:" in error_line(proc)


@ON_PI
def test_cli_exit_codes_on_the_emulated_pi(variant, tmp_path):
    """`make bench-remote HOST=pi-emulator DEVICE_PYTHON=…`: a crash exits 3, a missing runtime 2."""
    pi_emulator()
    crash = shlex.join(["sh", "-c", 'case "$1" in *runner.py) kill -SEGV $$ ;; esac; exec python3 "$@"', "sh"])
    proc = _cli(variant, "--host", "pi-emulator", "--python", crash, "--runtime", "onnxruntime")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "the runtime crashed on an accepted artifact" in error_line(proc)
    proc = _cli(variant, "--host", "pi-emulator", "--runtime", "tflite-runtime")
    assert proc.returncode == 2 and "pip install tflite-runtime" in error_line(proc)
