"""`make profile`: time per op type and per layer of every artifact of a variant, on this machine.

Each file runs on every installed runtime that takes its container (.tflite: LiteRT; .onnx: ONNX Runtime and,
when installed, OpenVINO), through `benchmarks/runtimes/_op_profile.py` (the same module `runner.py --op-profile` uses
on a device, where it is copied with the runtimes/ folder). Writes `profile-local.json` in the variant folder:

    {"schema": 1, "target": "local", "host": {...runner.host_info()}, "cpu_flags": ["avx512_vnni", ...],
     "threads": 2, "results": [{"file", "sha256", "runtime", "version", "threads", "method", "whole_ms", "sum_ms",
                                "residual_ms", "layers": [...], "by_op": [...], ...}]}
"""
from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Collection
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import sha256_file, write_json
from mobilenet_edge.pipeline.errors import PipelineError, ToolError
from mobilenet_edge.targets import plan

log = logging.getLogger(__name__)

PROFILE_FILE = "profile-{target}.json"
# Which runtimes profile which container, and the package each needs.
RUNTIMES = {".tflite": (("litert", "ai_edge_litert"),),
            ".onnx": (("onnxruntime", "onnxruntime"), ("openvino", "openvino"))}


def runtimes_for(path: Path, only: Collection[str] | None = None) -> list[str]:
    """The installed runtimes that profile `path` (optionally only those named in `only`)."""
    return [name for name, module in RUNTIMES.get(path.suffix, ())
            if importlib.util.find_spec(module) is not None and (only is None or name in only)]


def profile_local(variant_dir: Path, threads: int | None = None, runtimes: Collection[str] | None = None,
                  files: Collection[str] | None = None) -> Path:
    """Profile every artifact of `variant_dir` (or those named in `files`) on every runtime it runs on here.

    Returns variant_dir/profile-local.json (written atomically).
    """
    from mobilenet_edge.benchmarks import runner
    from mobilenet_edge.benchmarks.runtimes import _op_profile as op_profile

    variant_dir = Path(variant_dir)
    threads = threads or os.cpu_count() or 1
    if threads < 1:
        raise PipelineError(f"expected threads >= 1, received {threads}")
    artifacts = [p for p in plan.artifacts_of(variant_dir) if files is None or p.name in set(files)]
    if not artifacts:
        raise PipelineError(f"expected {', '.join(sorted(files or []))} in {variant_dir}, received no such artifact")
    results = []
    for path in artifacts:
        for runtime in runtimes_for(path, runtimes):
            log.info("profiling %s on %s, %d thread(s)", path.name, runtime, threads)
            try:
                record = op_profile.profile(str(path), runtime, threads)
            except Exception as exc:  # the runtime failed on a file it should run
                raise ToolError(f"expected {runtime} to profile {path.name}, received {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:240]}") from exc
            results.append({**record, "sha256": sha256_file(path)})
    doc = {"schema": 1, "target": "local", "host": runner.host_info(), "cpu_flags": op_profile.cpu_flags(),
           "threads": threads, "results": results}
    out = variant_dir / PROFILE_FILE.format(target="local")
    write_json(out, doc)
    return out
