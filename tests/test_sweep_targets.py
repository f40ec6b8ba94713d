"""Sweeps that reach devices (TARGETS="local pi-emulator"): every variant benchmarked on every target, a rerun
that measures nothing again, per-target panels in the latency plot, and bad TARGETS."""
from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from conftest import error_line, run_cli
from mobilenet_edge.pipeline.artifacts import sha256_file
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.registry import parse_targets
from tests_targets import pi_emulator

TASK = "fashion-mnist"
ARGS = ("--task", TASK, "--alphas", "0.25", "--resolutions", "32", "--formats", "fp32 int8", "--limit", "50",
        "--n", "16", "--runs", "10", "--no-progress", "--gate-int8-drop", "100", "--gate-int8-agreement", "0", "--targets", "local pi-emulator")


def test_targets_by_name_kind_profile_or_host(tmp_path, monkeypatch):
    ssh = tmp_path / "ssh"  # the emulator's key and known_hosts, as pi-emulator.sh would put them there
    ssh.mkdir()
    for name in ("id_ed25519", "known_hosts"):
        (ssh / name).write_text("")
    monkeypatch.setenv("PI_EMULATOR_DIR", str(tmp_path))
    monkeypatch.setenv("PI_EMULATOR_PORT", "22023")
    device = tmp_path / "my-pi.toml"  # a profile that names its device
    device.write_text('host = "pi@my-pi.local"\nport = 2222\nthreads = 4\n')
    local, pi, host, named = parse_targets(["local", "pi-emulator", "pi@raspberrypi.local", str(device)])
    assert (local.kind.name, local.address, local.file, local.entry) == ("local", None, "benchmark-local.json", "benchmark")
    assert (pi.kind.name, pi.address, pi.port, pi.profile.name) == ("pi-emulator", "root@127.0.0.1", 22023, "pi-emulator")
    assert (pi.identity, pi.known_hosts) == (str(ssh / "id_ed25519"), str(ssh / "known_hosts"))
    assert (pi.file, pi.entry) == ("benchmark-ssh-127.0.0.1.json", "benchmark@ssh-127.0.0.1")
    assert (host.kind.name, host.address, host.port, host.file) == ("ssh", "pi@raspberrypi.local", None,
                                                                   "benchmark-ssh-raspberrypi.local.json")
    assert (named.kind.name, named.address, named.port, named.profile.threads) == ("ssh", "pi@my-pi.local", 2222, 4)
    with pytest.raises(PipelineError, match=r"expected profile 'raspberry-pi-4' in TARGETS to name its device"):
        parse_targets(["raspberry-pi-4"])
    with pytest.raises(PipelineError, match=r"expected TARGETS to name each device once"):
        parse_targets(["pi-emulator", "root@127.0.0.1"])
    with pytest.raises(PipelineError, match=r"expected HOST as host or user@host"):
        parse_targets(["pi@host;reboot"])


def test_bad_targets_is_one_error_line(tmp_path):
    proc = run_cli("sweep", *ARGS[:-2], "--targets", "raspberry-pi-5", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "to name its device" in error_line(proc)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.tflite"))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("ssh") is None,
                    reason="the emulated Pi needs Linux, root (binfmt_misc, chroot, sshd) and the OpenSSH client")
def test_sweep_on_this_machine_and_the_emulated_pi_then_nothing_again(tmp_path):
    pi_emulator()  # built and started (cached); the pi-emulator profile names its host, port and keys
    out = tmp_path / "out"
    proc = run_cli("sweep", *ARGS, "--out", out, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = out / TASK / "mobilenet_0.25_32"
    files = sorted(p.name for p in folder.glob("*.tflite"))
    for name, machine in (("benchmark-local.json", "x86_64"), ("benchmark-ssh-127.0.0.1.json", "aarch64")):
        doc = json.loads((folder / name).read_text())
        assert doc["host"]["machine"] == machine and sorted(r["model"] for r in doc["results"]) == files
    state = json.loads((folder / "sweep-state.json").read_text())
    assert set(state) >= {"benchmark", "benchmark@ssh-127.0.0.1"}
    line = next(l for l in proc.stdout.splitlines() if l.startswith("mobilenet_0.25_32"))
    assert line.split()[-3:] == ["2", "timed", "done"], line  # the pi-emulator column
    summary = json.loads((out / "summary.json").read_text())
    assert {c["target"] for c in summary["latency_columns"]} == {"local", "ssh-127.0.0.1"}
    assert (out / "plots" / "accuracy_vs_latency.png").is_file()  # a panel per latency column, so per target
    assert json.loads((out / "sweep.json").read_text())["benchmark"]["targets"] == ["local", "pi-emulator"]

    before = {p.name: sha256_file(p) for p in folder.glob("benchmark-*.json")}
    again = run_cli("sweep", *ARGS, "--out", out, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    line = next(l for l in again.stdout.splitlines() if l.startswith("mobilenet_0.25_32"))
    assert line.split()[1:] == ["unchanged"] * 4 + ["unchanged"], line
    assert {p.name: sha256_file(p) for p in folder.glob("benchmark-*.json")} == before
