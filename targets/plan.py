"""Which runtime runs which artifact on a given python, and how the runner is called.

Shared by every target: `probe` a python (this machine's or a device's) for numpy and the runtimes,
`plan_runs` groups the variant's artifacts by the runtime that will run them (explicit choice, or the
profile's preference among what is installed) and fails early, naming the pip command that fixes a
missing runtime; `runner_argv` builds the runner's command line; `merge_reports` joins the runner's
JSON documents into one `benchmark-<target>.json`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mobilenet_edge.benchmarks import runtimes as runtime_registry
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "runner.py"
RUNTIMES_DIR = RUNNER.with_name("runtimes")  # the runner's runtime registry, copied to a device beside it

# From the runtime registry (benchmarks/runtimes/): runner name -> the container it runs and the module / pip
# package that provides it.
RUNTIME_FORMAT = {n: m.CONTAINER for m in runtime_registry.members() for n in m.NAMES}
RUNTIME_MODULE = {n: m.MODULE for m in runtime_registry.members() for n in m.NAMES}
PIP_NAME = {m.MODULE: m.PIP for m in runtime_registry.members()}
DEFAULT_PREFERENCE = runtime_registry.default_preference()
FORMATS = runtime_registry.containers()

# Run on the target's python as `python -c PROBE`: standard library + numpy only, Python >= 3.8, one
# JSON line out (benchmarks/runtimes/_probe.py, asked about every registered runtime).
PROBE = runtime_registry.probe_script()


def runner_files() -> list[tuple[Path, str]]:
    """What a device needs to run the runner, as (file, name in the copy): runner.py, then the runtimes/ folder
    (the folder itself first, so every tar creates it) and its modules."""
    modules = sorted(p for p in RUNTIMES_DIR.glob("*.py"))
    return [(RUNNER, RUNNER.name), (RUNTIMES_DIR, RUNTIMES_DIR.name),
            *((p, f"{RUNTIMES_DIR.name}/{p.name}") for p in modules)]


@dataclass(frozen=True)
class PythonInfo:
    """What `PROBE` found on one python: versions, or None for what is missing."""
    python: str
    machine: str
    numpy: str | None
    numpy_error: str | None = None
    modules: dict = field(default_factory=dict)
    cpu_features: tuple[str, ...] | None = None  # the Features line of an ARM /proc/cpuinfo

    @property
    def device(self) -> dict:
        """The probe's dict, as the runtime modules' checks take it."""
        return {"python": self.python, "machine": self.machine, "numpy": self.numpy, "modules": self.modules,
                "cpu_features": list(self.cpu_features) if self.cpu_features is not None else None}

    @property
    def arm_without_lse(self) -> bool:
        """An ARMv8.0 core (Raspberry Pi 4's Cortex-A72, Pi 3's A53): no LSE atomics."""
        return self.machine in ("aarch64", "arm64") and self.cpu_features is not None \
            and "atomics" not in self.cpu_features

    @classmethod
    def from_json(cls, text: str, where: str) -> PythonInfo:
        try:
            data = json.loads(text.strip().splitlines()[-1])
            features = data.get("cpu_features")
            return cls(data["python"], data["machine"], data["numpy"], data.get("numpy_error"), data["modules"],
                       tuple(features) if features is not None else None)
        except (ValueError, KeyError, IndexError, TypeError):
            raise PipelineError(f"expected the python probe on {where} to print JSON, received {text.strip()[-200:]!r}") from None


@dataclass(frozen=True)
class Run:
    """One runner invocation: every artifact of one format, on one runtime."""
    runtime: str
    models: tuple[Path, ...]


def artifacts_of(variant_dir: Path) -> list[Path]:
    """The variant's .tflite and .onnx files that its manifest lists with their sha256, sorted (a folder without
    a manifest: every such file). Other files there are left out with one warning line; PipelineError when
    none remain."""
    from mobilenet_edge.pipeline.artifacts import sha256_file
    from mobilenet_edge.pipeline.manifest import MANIFEST, read_manifest

    variant_dir = Path(variant_dir)
    if not variant_dir.is_dir():
        raise PipelineError(f"expected a variant folder, received {str(variant_dir)!r} (no such folder; export it first)")
    on_disk = sorted(p for p in variant_dir.iterdir() if p.suffix[1:] in FORMATS and p.is_file()
                     and not p.name.startswith("."))
    manifest = read_manifest(variant_dir)
    if manifest is None:
        found = on_disk
    else:
        listed = {e["file"]: e["sha256"] for e in manifest["artifacts"]}
        found = [p for p in on_disk if p.name in listed and sha256_file(p) == listed[p.name]]
        left_out = [f"{p.name} ({'changed since it was listed' if p.name in listed else 'not listed'})"
                    for p in on_disk if p not in found]
        if left_out:
            log.warning("left out of %s: %s; %s lists what the export made", variant_dir.name, ", ".join(left_out),
                        MANIFEST)
    if not found:
        raise PipelineError(f"expected .tflite or .onnx artifacts listed in {variant_dir / MANIFEST}, received none "
                            "(export them first)")
    return found


def _missing(info: PythonInfo, runtime: str) -> str | None:
    """Why `runtime` cannot run on `info`'s python, as 'received ...; fix: ...' text, or None."""
    module = RUNTIME_MODULE[runtime]
    if info.modules.get(module) is None:
        return f"received a python without it; fix: {{python}} -m pip install {PIP_NAME[module]}"
    return runtime_registry.incompatible(runtime, info.device)


def plan_runs(artifacts: list[Path], info: PythonInfo, *, runtime: str = "auto",
              preference: tuple[str, ...] = DEFAULT_PREFERENCE, where: str = "this machine",
              python: str = "python", also: bool = True) -> list[Run]:
    """Group `artifacts` by the runtime that runs them on `info`'s python.

    runtime="auto": per format, the first runtime of `preference` that is installed, and with `also` every
    installed runtime whose member says ALSO_MEASURED (bench: OpenVINO beside ONNX Runtime); also=False gives
    each file exactly one run (predictions, which name one output per file). Otherwise only the
    artifacts `runtime` can run. Raises PipelineError naming the pip command when numpy or a needed
    runtime is missing.
    """
    if runtime != "auto" and runtime not in RUNTIME_FORMAT:
        raise PipelineError(f"expected runtime auto or one of {sorted(RUNTIME_FORMAT)}, received {runtime!r}")
    label = f"{where} ({python}, Python {info.python}, {info.machine})"
    if info.numpy is None:
        raise PipelineError(f"expected numpy on {label}, received a python without it ({info.numpy_error}); "
                            f"fix: {python} -m pip install numpy")
    unusable = runtime_registry.unusable(runtime, info.device) if runtime != "auto" else None
    if unusable:
        raise PipelineError(f"{unusable} (on {label})")
    if runtime != "auto":
        fmt = RUNTIME_FORMAT[runtime]
        models = tuple(a for a in artifacts if a.suffix == f".{fmt}")
        if not models:
            names = ", ".join(a.name for a in artifacts)
            raise PipelineError(f"expected a .{fmt} artifact for runtime {runtime}, received only {names}")
        why = _missing(info, runtime)
        if why:
            raise PipelineError(f"expected {PIP_NAME[RUNTIME_MODULE[runtime]]} on {label}, {why.format(python=python)}")
        return [Run(_safe(runtime, info), models)]

    runs = []
    for fmt in FORMATS:
        models = tuple(a for a in artifacts if a.suffix == f".{fmt}")
        if not models:
            continue
        candidates = [r for r in preference if RUNTIME_FORMAT[r] == fmt] or \
                     [r for r in DEFAULT_PREFERENCE if RUNTIME_FORMAT[r] == fmt]
        usable = [r for r in candidates if _missing(info, r) is None]
        if not usable:
            first = candidates[0]
            why = _missing(info, first).format(python=python)
            raise PipelineError(f"expected {PIP_NAME[RUNTIME_MODULE[first]]} on {label} to run {len(models)} "
                                f".{fmt} artifact(s), {why}")
        runs.append(Run(_safe(usable[0], info), models))
        # Runtimes measured beside the first one where installed (OpenVINO beside ONNX Runtime on x86).
        runs += [Run(r, models) for r in runtime_registry.default_preference() if also and r != usable[0]
                 and RUNTIME_FORMAT[r] == fmt and getattr(runtime_registry.module_of(r), "ALSO_MEASURED", False)
                 and _missing(info, r) is None]
    return runs


def _safe(runtime: str, info: PythonInfo) -> str:
    """The runtime's own substitute where `runtime` would crash this CPU (litert -> litert-interpreter on an ARM
    core without LSE atomics, where ai-edge-litert 2.3's CompiledModel aborts the process with SIGILL)."""
    safe = runtime_registry.safe_name(runtime, info.device)
    if safe != runtime:
        log.info("%s cannot run %s safely: using %s", info.machine, runtime, safe)
    return safe


def runner_argv(models: list[str], runtime: str, *, threads: int | None, warmup: int, runs: int,
                min_seconds: float = 0.0, dump_outputs: str | None = None, seed: int = 0) -> list[str]:
    """The runner's arguments after `python runner.py` (models given as the target sees them)."""
    argv = [*models, "--runtime", runtime, "--warmup", str(warmup), "--runs", str(runs),
            "--min-seconds", f"{min_seconds:g}", "--seed", str(seed)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    if dump_outputs is not None:
        argv += ["--dump-outputs", dump_outputs]
    return argv


def parse_report(stdout: str, where: str) -> dict:
    """The runner's one JSON document; PipelineError when it is not there."""
    try:
        report = json.loads(stdout)
    except ValueError:
        raise PipelineError(f"expected the runner's JSON on {where}, received {stdout.strip()[-200:]!r}") from None
    if not isinstance(report, dict) or "results" not in report or "host" not in report:
        raise PipelineError(f"expected the runner's JSON with host and results on {where}, received {sorted(report)!r}")
    return report


def merge_reports(reports: list[dict], target: str, folder: Path | None = None, **extra) -> dict:
    """One benchmark document: the target, extra fields, the host of the first run, every result.

    With `folder`: each result names the sha256 of the file it timed, so the report can tell a result of
    today's file from one of a file that has since been replaced.
    """
    from mobilenet_edge.pipeline.artifacts import sha256_file

    results = [r for report in reports for r in report["results"]]
    for r in results:
        path = Path(folder or "") / str(r.get("model"))
        if folder is not None and path.is_file():
            r["sha256"] = sha256_file(path)
    return {"target": target, **extra, "host": reports[0]["host"], "results": results}


def kept_results(previous: Path, artifacts: list[Path], only) -> list[dict]:
    """With `only`: the earlier results in `previous` (a benchmark JSON) of the artifacts that are not measured
    again and still exist."""
    if only is None or not Path(previous).is_file():
        return []
    try:
        results = json.loads(Path(previous).read_text()).get("results", [])
    except (OSError, ValueError, AttributeError):
        return []
    present = {a.name for a in artifacts} - set(only)
    return [r for r in results if isinstance(r, dict) and r.get("model") in present]


def check_threads(threads) -> None:
    """None, a whole number >= 1, or (THREADS="1 2 4": threads as an axis) a non-empty sequence of them."""
    for t in thread_counts(threads):
        if t is not None and (not isinstance(t, int) or isinstance(t, bool) or t < 1):
            raise PipelineError(f"expected threads >= 1, received {threads!r}")


def thread_counts(threads) -> list:
    """The thread counts to time: [None] (the runner's default) for None, [n] for n, else the sequence's
    distinct values in their order."""
    if threads is None or isinstance(threads, (int, bool)) or not hasattr(threads, "__iter__"):
        return [threads]
    counts = list(dict.fromkeys(threads))
    if not counts:
        raise PipelineError(f"expected at least one thread count, received {threads!r}")
    return counts
