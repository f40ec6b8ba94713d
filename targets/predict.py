"""Run fixed inputs through artifacts with the standalone runner (`runner.py --predict`): the parts every target
shares. Each kind runs it its own way (`targets.local.predict_local`, `targets.ssh.predict_ssh`).

The inputs are a folder of .npy chunks plus `inputs.json` (which chunks each model gets), prepared on
this machine; the runner saves each model's raw outputs (its own dtype) and prints JSON naming the runtime
and version it used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.errors import PipelineError

PLAN = "inputs.json"  # the runner's PREDICT_PLAN


@dataclass(frozen=True)
class Predictions:
    """One side's run: the runner's host record, per model its record (runtime, version, ...) and raw outputs."""
    host: dict
    runs: dict
    outputs: dict


def predict_argv(models: list[str], runtime: str, folder: str, threads: int | None) -> list[str]:
    """The runner's arguments after `python runner.py` (models and folder as the target sees them)."""
    return [*models, "--runtime", runtime, "--predict", folder, *(["--threads", str(threads)] if threads else [])]


def collect(reports: list[dict], outputs_dir: Path, runs_planned: list, where: str) -> Predictions:
    """The outputs of every planned model (an explicit runtime runs only the artifacts of its format)."""
    runs = {p["model"]: p for report in reports for p in report.get("predictions", [])}
    outputs = {}
    for model in (m for run in runs_planned for m in run.models):
        path = outputs_dir / f"{model.name}.npy"
        if model.name not in runs or not path.is_file():
            raise PipelineError(f"expected the outputs of {model.name} from {where}, received none")
        outputs[model.name] = np.load(path)
    return Predictions(reports[0]["host"], runs, outputs)


def parse_predictions(stdout: str, where: str) -> dict:
    try:
        report = json.loads(stdout)
        if isinstance(report, dict) and "predictions" in report and "host" in report:
            return report
    except ValueError:
        pass
    raise PipelineError(f"expected the runner's --predict JSON on {where}, received {stdout.strip()[-200:]!r}")
