"""Arm's Ethos-U compiler (Vela) on a TFLite Micro file: the compiled .tflite (the NPU's command stream in one
custom op, CPU fallbacks beside it), its NPU/CPU op split, SRAM and flash use, cycle and inference-time
estimates at the system configuration's clock, and its per-layer table.

Vela runs as its own command (`vela`, installed beside this Python by the mcu extra); its figures are
compiler estimates, not measurements on silicon (Vela says so itself).
"""
from __future__ import annotations

import csv
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import write_bytes
from mobilenet_edge.pipeline.config import VELA_SYSTEMS
from mobilenet_edge.pipeline.errors import PipelineError, ToolError

log = logging.getLogger(__name__)

LAYER_COLUMNS = {"Original Operator": "op", "NNG Operator": "npu_op", "Target": "target", "Op Cycles": "cycles",
                 "Network% (cycles)": "cycles_percent", "MAC Count": "macs", "Util% (MAC)": "mac_util_percent",
                 "Name": "name"}


@dataclass(frozen=True)
class VelaResult:
    npu: str
    system_config: str
    memory_mode: str
    file: str  # the compiled .tflite, beside the input
    bytes: int
    npu_ops: int
    cpu_ops: int
    sram_bytes: int  # Vela's "Total SRAM used" (the NPU's arena and scratch)
    flash_bytes: int  # off-chip flash: weights and the command stream
    clock_hz: float
    cycles: int
    inference_ms: float
    macs: int
    layers: tuple[dict, ...]  # per-layer table (--verbose-performance CSV), one row per NPU/CPU operation
    version: str

    def to_dict(self) -> dict:
        return asdict(self)


def vela_command() -> str:
    """The `vela` console script of this environment (the mcu extra), else one on PATH."""
    beside = Path(sys.executable).with_name("vela")
    found = str(beside) if beside.is_file() else shutil.which("vela")
    if not found:
        raise PipelineError("expected Arm's Vela compiler (the mcu extra: `make setup-mcu`, or pip install -r "
                            "requirements-mcu.lock) for NPU=ethos-u…, received an environment without `vela`")
    return found


def compile_for_npu(model: Path, npu: str, out_dir: Path) -> VelaResult:
    """Compile `model` for `npu` (NPU=…); the compiled file lands in out_dir as <stem>_vela.tflite."""
    if npu not in VELA_SYSTEMS:
        raise PipelineError(f"expected NPU among {', '.join(VELA_SYSTEMS)}, received NPU={npu!r}")
    system, memory = VELA_SYSTEMS[npu]
    with tempfile.TemporaryDirectory(prefix="vela-") as tmp:
        cmd = [vela_command(), str(model), "--accelerator-config", npu, "--config", "Arm/vela.ini",
               "--system-config", system, "--memory-mode", memory, "--output-dir", tmp, "--verbose-performance"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise ToolError(f"expected Vela to compile {model.name} for {npu} within 900 s, received no answer") from None
        if done.returncode != 0:
            said = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            raise ToolError(f"expected Vela to compile {model.name} for {npu}, received exit code {done.returncode}"
                            f"{': ' + said[-1][:200] if said else ''}")
        folder = Path(tmp)
        compiled = folder / f"{model.stem}_vela.tflite"
        summary = next(folder.glob(f"{model.stem}_summary_*.csv"), None)
        layers_csv = folder / f"{model.stem}_per-layer.csv"
        if not compiled.is_file() or summary is None:
            raise ToolError(f"expected Vela to write {compiled.name} and a summary CSV, received {sorted(p.name for p in folder.iterdir())}")
        target = write_bytes(out_dir / compiled.name, compiled.read_bytes())
        row = next(csv.DictReader(summary.open()))
        layers = tuple({key: _number(r[col]) for col, key in LAYER_COLUMNS.items()}
                       for r in csv.DictReader(layers_csv.open())) if layers_csv.is_file() else ()
    npu_ops, cpu_ops = _op_split(done.stdout)
    result = VelaResult(
        npu=npu, system_config=row["system_config"], memory_mode=row["memory_mode"], file=target.name,
        bytes=target.stat().st_size, npu_ops=npu_ops, cpu_ops=cpu_ops,
        sram_bytes=round(float(row["sram_memory_used"]) * 1024),
        flash_bytes=round((float(row["off_chip_flash_memory_used"]) + float(row["on_chip_flash_memory_used"])) * 1024),
        clock_hz=float(row["core_clock"]), cycles=int(float(row["cycles_total"])),
        inference_ms=round(1000 * float(row["inference_time"]), 4), macs=int(float(row["nn_macs"])),
        layers=layers, version=_version())
    log.info("%s on %s: %d NPU / %d CPU ops, SRAM %.1f KiB, flash %.1f KiB, %.3f ms at %.0f MHz", model.name, npu,
             npu_ops, cpu_ops, result.sram_bytes / 1024, result.flash_bytes / 1024, result.inference_ms,
             result.clock_hz / 1e6)
    return result


def _op_split(stdout: str) -> tuple[int, int]:
    """(NPU, CPU) operator counts from Vela's printed summary ("NPU operators = 58 (100.0%)")."""
    counts = {kind: int(n) for kind, n in re.findall(r"(NPU|CPU) operators = (\d+)", stdout)}
    if set(counts) != {"NPU", "CPU"}:
        raise ToolError("expected Vela's summary to state its NPU and CPU operator counts, received neither")
    return counts["NPU"], counts["CPU"]


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ethos-u-vela")
    except PackageNotFoundError:
        return "unknown"
