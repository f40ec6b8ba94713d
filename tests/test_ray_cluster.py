"""EXECUTOR=ray on a real two-node Ray cluster whose worker node does not see the driver's files.

A head node and a second node are started with `ray start` on this machine, each with its own temp and
working folder; the second node runs in a private mount namespace where the test's folder (OUT, the
weights file) is hidden under an empty tmpfs, and the jobs are sent to it by a custom resource only it has.
So the jobs can only work if their inputs (the variant folder, a weights file given by path, the
calibration samples) travel to them and their files travel back through Ray's object store. Every file
the jobs write must be byte for byte the process executor's (model.keras: its weights; Keras writes the
save time and Python object ids into the rest; no ONNX format: tf2onnx's bytes vary from run to run on any
executor), and every job must run on the second node.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli
from mobilenet_edge.pipeline.artifacts import sha256_file

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="hiding the driver's folder from the second node needs Linux, root and unshare (a mount namespace)")]

RAY = Path(sys.executable).with_name("ray")
ADDRESS = "127.0.0.1:6379"  # Ray's usual port, on the loopback
TASK, VARIANT = "fashion-mnist", "mobilenet_0.25_32"
# TFLite formats: tf2onnx writes different bytes on every run (the constants it deduplicates get names in a
# varying order), even twice on the process executor, so an ONNX file has no sha256 to compare.
GRID = ("--task", TASK, "--alphas", "0.25", "--resolutions", "32", "--formats", "fp32 int8", "--limit", "50",
        "--n", "16", "--no-bench", "--no-progress", "--gate-int8-drop", "100")


def _pids_using(marker: str) -> list[int]:
    """Processes whose command line names `marker` (a folder only this test's Ray nodes use)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _stop(proc: subprocess.Popen, marker: str) -> None:
    """Stop a `ray start --block` node and, by pid, whatever it started that still runs (raylet, workers)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    for pid in _pids_using(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """(head, second node): each with its own temp and working folder; tmp_path is invisible to the second."""
    # A loopback-only test cluster: no token, whatever ~/.ray/auth_token another Ray run left (a head that
    # finds one turns token authentication on, which drivers without RAY_AUTH_MODE=token then fail).
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("expected Ray in CI (make setup-ray installs requirements-ray.lock), received no module 'ray'")
        pytest.skip("Ray is not installed (make setup-ray)")
    base = Path(tempfile.mkdtemp(prefix="ray-nodes-"))  # outside tmp_path: the second node must see its own
    dirs = {name: (base / name / "tmp", base / name / "work") for name in ("head", "node2")}
    for temp, work in dirs.values():
        temp.mkdir(parents=True)
        work.mkdir(parents=True)
    common = ["--block", "--disable-usage-stats", "--object-store-memory=200000000"]
    logs = {name: open(base / f"{name}.log", "w") for name in dirs}
    head = subprocess.Popen([str(RAY), "start", "--head", "--port=6379", "--num-cpus=1", "--include-dashboard=false",
                             f"--temp-dir={dirs['head'][0]}", *common], cwd=dirs["head"][1], stdout=logs["head"],
                            stderr=subprocess.STDOUT)
    node2_cmd = " ".join([str(RAY), "start", f"--address={ADDRESS}", "--num-cpus=2", "--resources='{\"node2\": 2}'",
                          f"--temp-dir={dirs['node2'][0]}", *common])
    node2 = None
    try:
        _wait_for(lambda: "CPU" in _resources(), 90, base / "head.log")
        node2 = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                  f"mount -t tmpfs tmpfs {tmp_path} && exec {node2_cmd}"],
                                 cwd=dirs["node2"][1], stdout=logs["node2"], stderr=subprocess.STDOUT)
        _wait_for(lambda: "node2" in _resources(), 90, base / "node2.log")
        yield dirs
    finally:
        if node2 is not None:
            _stop(node2, str(dirs["node2"][0]))
        _stop(head, str(dirs["head"][0]))
        for f in logs.values():
            f.close()
        shutil.rmtree(base, ignore_errors=True)


def _resources() -> dict:
    probe = ("import json, ray; ray.init(address=%r, logging_level='ERROR', log_to_driver=False); "
             "print(json.dumps(ray.cluster_resources()))" % ADDRESS)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def _wait_for(ready, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(2)
    raise RuntimeError(f"the Ray node did not come up; {log}:\n{log.read_text()[-3000:]}")


def _job_files(folder: Path) -> dict[str, str]:
    """sha256 of every file the jobs wrote (not sweep.log: times); model.keras: its weights member."""
    out = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != "sweep.log"):
        if path.name == "model.keras":
            with zipfile.ZipFile(path) as z:
                out["model.keras:model.weights.h5"] = __import__("hashlib").sha256(z.read("model.weights.h5")).hexdigest()
        else:
            out[path.name] = sha256_file(path)
    return out


def test_ray_cluster_without_a_shared_filesystem_writes_the_process_executors_files(cluster, tmp_path):
    from mobilenet_edge.pipeline import build

    weights_dir = tmp_path / "weights"  # a weights file given by path, which the second node cannot see
    weights_dir.mkdir()
    reference = build.reference_checkpoint(TASK, 0.25)
    for sibling in reference.parent.glob(reference.name.split(".")[0] + ".*"):
        shutil.copy(sibling, weights_dir / sibling.name)
    weights = ("--weights", str(weights_dir / reference.name))

    local = run_cli("sweep", *GRID, *weights, "--out", tmp_path / "process", timeout=1200)
    assert local.returncode == 0, local.stderr[-3000:]
    ray_run = run_cli("sweep", *GRID, *weights, "--executor", "ray", "--ray-address", ADDRESS, "--ray-resources",
                      '{"node2": 1}', "--threads", "2", "--out", tmp_path / "ray", timeout=1500)
    assert ray_run.returncode == 0, ray_run.stderr[-3000:]
    assert "ray, 1 worker(s)" in ray_run.stdout, ray_run.stdout

    want, got = (_job_files(tmp_path / o / TASK / VARIANT) for o in ("process", "ray"))
    assert {f"{VARIANT}_fp32.tflite", f"{VARIANT}_int8.tflite", "manifest.json", "validation.json", "cost.json",
            "labels.txt", "sweep-state.json", "model.keras:model.weights.h5"} <= set(want)
    assert got == want
    manifest = json.loads((tmp_path / "ray" / TASK / VARIANT / "manifest.json").read_text())
    assert manifest["variant"]["weights_file"] == str(weights_dir / reference.name)  # the driver's path
    log = (tmp_path / "ray" / TASK / VARIANT / "sweep.log").read_text()
    node2_work = str(cluster["node2"][1])
    assert "convert mobilenet_0.25_32" in log and "validate mobilenet_0.25_32" in log
    # Both jobs ran in the second node's workers (their working folder), never where OUT is.
    assert log.count(f"cwd {node2_work}") == 2, log[-2000:]
