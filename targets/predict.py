"""Run fixed inputs through artifacts with the standalone runner (`runner.py --predict`), here or over ssh.

The inputs are a folder of .npy chunks plus `inputs.json` (which chunks each model gets), prepared on
this machine; the runner saves each model's raw outputs (its own dtype) and prints JSON naming the runtime
and version it used. Over ssh the folder, the runner and the artifacts travel as a tar stream into a
`mktemp -d` folder, the outputs come back the same way, and the folder is removed afterwards, also after
a failure or a timeout: nothing is left on the device.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets import plan
from mobilenet_edge.targets.ssh import Ssh, _remote_path, _tar, _untar_npy, _with_timeout, probe_device, remote_folder, \
    remove_remote_folder

log = logging.getLogger(__name__)

PLAN = "inputs.json"  # the runner's PREDICT_PLAN


@dataclass(frozen=True)
class Predictions:
    """One side's run: the runner's host record, per model its record (runtime, version, ...) and raw outputs."""
    host: dict
    runs: dict
    outputs: dict


def _argv(models: list[str], runtime: str, folder: str, threads: int | None) -> list[str]:
    return [*models, "--runtime", runtime, "--predict", folder, *(["--threads", str(threads)] if threads else [])]


def _collect(reports: list[dict], outputs_dir: Path, runs_planned: list, where: str) -> Predictions:
    """The outputs of every planned model (an explicit runtime runs only the artifacts of its format)."""
    runs = {p["model"]: p for report in reports for p in report.get("predictions", [])}
    outputs = {}
    for model in (m for run in runs_planned for m in run.models):
        path = outputs_dir / f"{model.name}.npy"
        if model.name not in runs or not path.is_file():
            raise PipelineError(f"expected the outputs of {model.name} from {where}, received none")
        outputs[model.name] = np.load(path)
    return Predictions(reports[0]["host"], runs, outputs)


def _parse(stdout: str, where: str) -> dict:
    try:
        report = json.loads(stdout)
        if isinstance(report, dict) and "predictions" in report and "host" in report:
            return report
    except ValueError:
        pass
    raise PipelineError(f"expected the runner's --predict JSON on {where}, received {stdout.strip()[-200:]!r}")


def predict_local(models: list[Path], inputs: Path, *, threads: int | None = None,
                  preference: tuple[str, ...] = plan.DEFAULT_PREFERENCE) -> Predictions:
    """The runner with this python over `models`, each fed the chunks `inputs`/inputs.json names."""
    info = plan.PythonInfo.from_json(_run([sys.executable, "-c", plan.PROBE], "the python probe"), "this machine")
    with tempfile.TemporaryDirectory(prefix="predict-local-") as tmp:
        work = Path(tmp) / "inputs"
        shutil.copytree(inputs, work)  # the runner writes outputs/ beside its inputs; keep `inputs` as given
        reports, runs = [], plan.plan_runs(models, info, preference=preference, python=sys.executable)
        for run in runs:
            argv = [sys.executable, str(plan.RUNNER), *_argv([str(m) for m in run.models], run.runtime, str(work), threads)]
            reports.append(_parse(_run(argv, f"the runner --predict ({run.runtime})"), "this machine"))
        return _collect(reports, work / "outputs", runs, "this machine")


def predict_ssh(models: list[Path], inputs: Path, ssh: Ssh, *, python: str = "python3", threads: int | None = None,
                runtime: str = "auto", preference: tuple[str, ...] = plan.DEFAULT_PREFERENCE,
                timeout_s: float = 1800) -> Predictions:
    """The same on a device: probe, copy (runner, models, chunks), run, fetch outputs, remove the folder."""
    deadline = time.monotonic() + timeout_s

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PipelineError(f"expected the device validation on {ssh.where} to finish within {timeout_s:g} s, "
                                f"received a timeout")
        return left

    info = probe_device(ssh, python, remaining())
    runs = plan.plan_runs(models, info, runtime=runtime, preference=preference, where=ssh.where, python=python)
    chunks = sorted(p for p in Path(inputs).iterdir() if p.is_file())
    remote_dir = remote_folder(ssh, remaining())
    try:
        with tempfile.TemporaryFile() as bundle:
            _tar([*plan.runner_files(), *models, *chunks], bundle)
            bundle.seek(0)
            log.info("copying the runner, %d artifact(s) and %d input file(s) to %s:%s", len(models), len(chunks),
                     ssh.where, remote_dir)
            ssh.run(["tar", "-x", "-f", "-", "-C", remote_dir], "copying the inputs", stdin=bundle,
                    timeout_s=remaining())
        reports = []
        for run in runs:
            log.info("running %d artifact(s) with %s on %s", len(run.models), run.runtime, ssh.where)
            argv = [*_remote_path(python), f"{remote_dir}/runner.py",
                    *_argv([f"{remote_dir}/{m.name}" for m in run.models], run.runtime, remote_dir, threads)]
            left = remaining()
            out = ssh.run(_with_timeout(argv, left), f"the runner --predict ({run.runtime})", timeout_s=left + 10)
            reports.append(_parse(out.decode(errors="replace"), ssh.where))
        out = ssh.run(["tar", "-c", "-f", "-", "-C", f"{remote_dir}/outputs", "."], "fetching the outputs",
                      timeout_s=remaining())
        with tempfile.TemporaryDirectory(prefix="predict-ssh-") as tmp:
            _untar_npy(out, Path(tmp))
            return _collect(reports, Path(tmp), runs, ssh.where)
    finally:
        remove_remote_folder(ssh, remote_dir)


def _run(argv: list[str], what: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
        raise PipelineError(f"expected {what} to succeed on this machine, received "
                            f"{lines[-1] if lines else f'exit status {proc.returncode}'!r}")
    return proc.stdout
