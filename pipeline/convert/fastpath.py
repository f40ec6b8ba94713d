"""Fast-path audit: which ops of a model file run on the fast kernels, and which fall off them.

- `.tflite`: loaded in ai-edge-litert's Interpreter, which applies XNNPACK by default. Each DELEGATE node is one
  XNNPACK partition; the original ops it replaced are found by walking back from its outputs to its inputs.
  Ops outside every partition run on TFLite's builtin kernels (for int8 often the reference ones), and every
  extra partition costs a hand-over. The file is on the fast path when it is one partition and nothing
  but the I/O conversions at its edges (QUANTIZE/DEQUANTIZE, SOFTMAX) stays builtin.
- `.onnx`: onnxruntime's CPU session at its default optimisation level saves the graph it runs
  (`SessionOptions.optimized_model_filepath`). In a quantized graph the integer kernels are QLinear*,
  QGemm, MatMulInteger...; a float compute node (Conv, Add, Mul, ...) fed by DequantizeLinear or feeding
  QuantizeLinear is a QDQ group onnxruntime could not fuse: it runs in float with a conversion on each side.
  The file is on the fast path when no such node is left. A float model has no such nodes by definition.

The audit describes the file on *this* machine's runtime build: XNNPACK on ARM or another onnxruntime may
take different ops (benchmarks/runner.py reports the TFLite delegation on the device itself). The rules live
once, in the runtime modules (benchmarks/runtimes/: `audit`), which the runner uses too; this module picks the
runtime that audits a container and keeps the record's type.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from mobilenet_edge.benchmarks import runtimes
from mobilenet_edge.benchmarks.runtimes._common import RunnerError
from mobilenet_edge.pipeline.errors import PipelineError


@dataclass(frozen=True)
class FastPath:
    """What one model file runs on: fast ops by type, the ops that fall off the fast path by type."""

    runtime: str  # "xnnpack" (the LiteRT Interpreter's default delegate) | "onnxruntime-cpu"
    ops: int  # ops in the graph (TFLite: before delegation; ONNX: after onnxruntime's optimisation)
    fast: dict = field(default_factory=dict)  # op type -> count: delegated to XNNPACK | integer kernels | float model
    slow: dict = field(default_factory=dict)  # op type -> count: builtin kernels | float between Q/DQ
    partitions: int | None = None  # TFLite: XNNPACK partitions (1 = one delegated graph)
    edge: dict = field(default_factory=dict)  # TFLite: builtin I/O ops at the edges; ONNX: Q/DQ nodes left

    @property
    def on_fast_path(self) -> bool:
        if self.runtime == "xnnpack":
            return self.partitions == 1 and not self.slow
        return not self.slow

    @property
    def culprits(self) -> list[str]:
        """The op types that fall off the fast path, most frequent first ("HARD_SWISH x19")."""
        return [f"{op} x{n}" for op, n in sorted(self.slow.items(), key=lambda kv: (-kv[1], kv[0]))]

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "ops": self.ops, "partitions": self.partitions,
                "fast": dict(sorted(self.fast.items())), "slow": dict(sorted(self.slow.items())),
                "edge": dict(sorted(self.edge.items())), "on_fast_path": self.on_fast_path}

    @classmethod
    def from_dict(cls, record: dict) -> FastPath:
        return cls(record["runtime"], record["ops"], dict(record["fast"]), dict(record["slow"]),
                   record["partitions"], dict(record["edge"]))


def auditor(container: str):
    """The runtime module that audits files of `container` here: the first registered one installed."""
    fitting = [runtimes.module_of(n) for n in runtimes.names_for(container)]
    installed = [m for m in fitting if importlib.util.find_spec(m.MODULE) is not None]
    if not fitting:
        raise PipelineError(f"expected a file of a container some runtime runs ({', '.join(runtimes.containers())}), "
                            f"received .{container}")
    return (installed or fitting)[0]


def audit(path: Path) -> FastPath:
    """The fast-path audit of a model file (see the module docstring)."""
    path = Path(path)
    container = path.suffix[1:]
    if container not in runtimes.containers():
        suffixes = " or ".join(f".{c}" for c in runtimes.containers())
        raise PipelineError(f"expected a {suffixes} file to audit, received {path.name!r}")
    try:
        return FastPath.from_dict(auditor(container).audit(path))
    except RunnerError as exc:
        raise PipelineError(str(exc)) from exc


def audit_entries(folder: Path, entries: list[dict]) -> list[dict]:
    """Manifest artifact entries with a `fast_path` record each (the audit of the file beside them)."""
    return [{**entry, "fast_path": audit(Path(folder) / entry["file"]).to_dict()} for entry in entries]


def also_audited(path: Path) -> dict:
    """{"fast_path_by_runtime": {name: audit}} for the runtimes measured beside the default one that run `path`
    here (OpenVINO for .onnx: its runtime model's int8 and float layers); {} when there are none."""
    path = Path(path)
    found = {}
    for name in runtimes.also_measured():
        module = runtimes.module_of(name)
        if module.CONTAINER == path.suffix[1:]:
            try:
                found[name] = FastPath.from_dict(module.audit(path)).to_dict()
            except RunnerError as exc:
                raise PipelineError(str(exc)) from exc
    return {"fast_path_by_runtime": found} if found else {}
