"""On-device validation (`make validate HOST=…`) against the emulated Raspberry Pi (aarch64 under qemu-user).

Every .tflite and both ONNX files of a real converted variant (the reference checkpoint at alpha 0.25,
32 px) run the held-out Fashion-MNIST images on the emulated Pi and on this machine with the standalone
runner; the figures land in validation-ssh-<host>.json and the report shows them beside this machine's.
Also: an ~/.ssh/config-style alias with its own Port works without PORT, and tflite-runtime 2.14 with
numpy<2 runs the same inputs on the device.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from mobilenet_edge.calibration.tasks import resolve_task
from mobilenet_edge.pipeline.report import write_report
from mobilenet_edge.pipeline.validate import validate
from mobilenet_edge.pipeline.config import ValidationConfig
from mobilenet_edge.pipeline.validate.device import _row, validate_on_device
from mobilenet_edge.targets.registry import resolve_target
from tests_targets import pi_emulator

LIMIT = 60
needs_pi = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("ssh") is None,
    reason="the emulated Pi needs Linux, root (binfmt_misc, chroot, sshd) and the OpenSSH client")


@pytest.fixture(scope="module")
def pi():
    return pi_emulator()


@pytest.fixture(scope="module")
def variant(tiny_export, tmp_path_factory):
    """A copy of the session's tiny export (every format), so the report of this module sees only it."""
    folder = tmp_path_factory.mktemp("device-validation") / "fashion-mnist" / tiny_export.manifest.parent.name
    shutil.copytree(tiny_export.manifest.parent, folder)
    return folder


def leftovers(pi) -> list[str]:
    return sorted(p.name for p in (Path(pi["PI_EMULATOR_DIR"]) / "rootfs" / "tmp").glob("mobilenet-edge.*"))


def test_differs_flags_a_moved_prediction_or_output_not_rounding():
    entry = {"file": "m.tflite", "format": "tflite", "precision": "int8", "sha256": "x",
             "outputs": [{"dtype": "uint8", "scale": 1 / 256, "zero_point": 0}]}
    host = np.array([[200, 56], [10, 246]], np.uint8)
    reference, labels, run = np.array([[0.8, 0.2], [0.1, 0.9]]), np.array([0, 1]), {"runtime": "r"}
    same = _row(entry, host, host + np.array([[1, 0], [0, 0]], np.uint8), run, run, reference, labels)
    assert not same["differs"] and same["top1_agreement_host"] == 1.0 and same["device"]["top1"] == 1.0
    step = _row(entry, host, host + np.array([[2, 0], [0, 0]], np.uint8), run, run, reference, labels)
    assert step["differs"] and step["max_abs_diff_host"] == pytest.approx(2 / 256)  # two steps: a different kernel
    flipped = _row(entry, host, host[:, ::-1].copy(), run, run, reference, labels)
    assert flipped["differs"] and flipped["top1_agreement_host"] == 0.0 and flipped["device"]["top1"] == 0.0


@needs_pi
@pytest.mark.slow
def test_validate_on_the_emulated_pi_every_artifact_and_the_report(pi, variant):
    result = validate_on_device(variant, resolve_task("fashion-mnist"), resolve_target("pi-emulator"),
                                ValidationConfig(limit=LIMIT))
    assert result.path == variant / "validation-ssh-127.0.0.1.json"
    data = json.loads(result.path.read_text())
    assert data["device"]["machine"] == "aarch64" and data["this_machine"]["machine"] == "x86_64"
    manifest = json.loads((variant / "manifest.json").read_text())
    rows = {r["file"]: r for r in data["artifacts"]}
    assert sorted(rows) == sorted(a["file"] for a in manifest["artifacts"])
    assert {r["format"] for r in rows.values()} == {"tflite", "onnx"}
    assert {r["precision"] for r in rows.values() if r["format"] == "onnx"} == {"fp32", "int8"}
    # The same images and inputs as `make validate` (same split, limit, seed, preprocessing): its top-1 per artifact
    # equals this machine's run here.
    validate(variant, resolve_task("fashion-mnist"), ValidationConfig(limit=LIMIT))
    host_validation = json.loads((variant / "validation.json").read_text())
    assert data["images_sha256"] == host_validation["images_sha256"]
    assert data["float"]["top1"] == pytest.approx(host_validation["float"]["top1"])
    for row in host_validation["artifacts"]:
        assert rows[row["file"]]["host"]["top1"] == pytest.approx(row["metrics"]["top1"]), row["file"]
    for name, r in rows.items():
        assert r["images"] == LIMIT and 0 < r["device"]["top1"] <= 1, r
        device_rt, host_rt = r["device"]["runtime"], r["host"]["runtime"]
        assert device_rt["name"] == ("litert-interpreter" if name.endswith(".tflite") else "onnxruntime"), r
        assert device_rt["version"] and device_rt["version"] == host_rt["version"], r
        if r["precision"] == "fp32":  # same release, same file: fp32 gives the same predictions on ARM and x86
            assert r["top1_agreement_host"] == 1.0 and r["max_abs_diff_host"] < 1e-4, r
        print(f"{name}: device top-1 {r['device']['top1']:.3f}, host {r['host']['top1']:.3f}, "
              f"agree {r['top1_agreement_host']:.3f}, max |d| {r['max_abs_diff_host']:.2g}")
    assert leftovers(pi) == []

    report = write_report(variant.parents[1], checkpoints=None)
    summary = json.loads(report.summary.read_text())
    assert summary["device_targets"] == ["ssh-127.0.0.1"]
    shown = [r for r in summary["records"] if "device_validation" in r]
    assert len(shown) == len(rows)
    markdown = report.markdown.read_text()
    assert "device top-1 % ssh-127.0.0.1" in markdown and "Device validation" in markdown
    assert (f"differ on ssh-127.0.0.1" in markdown) == bool(data["differs"])
    assert ("Every artifact gives this machine's results on ssh-127.0.0.1" in markdown) == (not data["differs"])


@needs_pi
@pytest.mark.slow
def test_an_ssh_config_alias_keeps_its_port_and_tflite_runtime_runs_on_the_device(pi, variant, tmp_path):
    """No PORT given: ssh uses the alias's Port 22022 (the Makefile used to force -p 22 and miss it)."""
    config = tmp_path / "ssh_config"
    config.write_text(f"Host emulated-pi\n  HostName 127.0.0.1\n  Port {pi['PORT']}\n  User root\n"
                      f"  IdentityFile {pi['IDENTITY']}\n  UserKnownHostsFile {pi['KNOWN_HOSTS']}\n")
    target = resolve_target(host="emulated-pi", ssh_config=str(config), python=pi["TFLITE_RUNTIME_PYTHON"])
    result = validate_on_device(variant, resolve_task("fashion-mnist"), target, ValidationConfig(limit=20),
                                runtime="tflite-runtime", threads=1)
    data = json.loads(result.path.read_text())
    assert result.path.name == "validation-ssh-emulated-pi.json" and data["device"]["port"] is None
    assert data["device"]["numpy"].startswith("1.") and data["device"]["runtimes"] == {"tflite-runtime": "2.14.0"}
    rows = data["artifacts"]
    assert sorted(r["file"] for r in rows) == sorted(p.name for p in variant.glob("*.tflite"))
    for r in rows:
        assert (r["device"]["runtime"]["name"], r["device"]["runtime"]["version"]) == ("tflite-runtime", "2.14.0"), r
        assert r["host"]["runtime"]["name"] == "litert-interpreter"
        if r["precision"] in ("fp32", "fp16"):
            assert r["top1_agreement_host"] == 1.0, r
    assert leftovers(pi) == []
