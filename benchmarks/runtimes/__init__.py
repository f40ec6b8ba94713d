"""The runtime registry: one module per runtime, used by the pipeline and by the standalone runner alike.

A runtime is what executes a model file (LiteRT, tflite-runtime, ONNX Runtime). Its module is imported in two
ways: `mobilenet_edge.benchmarks.runtimes.<module>` in the pipeline, and `runtimes.<module>` when
`benchmarks/runner.py` runs as a script beside a copy of this folder on a device (targets/ssh.py copies both).
So a member imports only the standard library, numpy, the members' shared helpers (`from ._common import ...`)
and, lazily inside its functions, its own runtime package; it runs on Python 3.9+ and never imports
`mobilenet_edge`. Errors for the user are `_common.RunnerError("expected ..., received ...")`.

Adding a runtime: write `benchmarks/runtimes/<module>.py` with the fields below and add its module name to
`MEMBERS` (the order is the default preference: `auto` takes, for each file, the first member that runs its
container and is installed). Nothing else: the runner's `--runtime` choices, the device probe, the targets'
plan and its pip hints, validation and the format registry's runtime lists all read this registry.

A member module defines:

    NAMES: tuple[str, ...]   the runner names it answers to (`--runtime NAME`, profiles' `runtimes`); NAMES[0]
                             is the one a preference or `auto` picks, e.g. ("litert", "litert-interpreter",
                             "litert-compiled"). Names are unique across members.
    CONTAINER: str           the model container it runs, the file suffix without its dot: "tflite" | "onnx"
                             (the format registry, pipeline/formats.py, groups formats by container).
    MODULE: str              its top-level import name, which the probe looks for without importing it
                             ("ai_edge_litert").
    PIP: str                 its pip distribution, for versions and `fix: python -m pip install PIP`.
    INSTALL: str             the runner's fix for a missing install, e.g. 'pip install tflite-runtime "numpy<2"'.
    FAST_PATH: str           the name its fast-path audit records under `runtime` ("xnnpack", "onnxruntime-cpu").
    version() -> str | None  the version of its imported package (None before it was imported).
    load(name, path, threads, *, batch=None, context=None) -> backend
                             a loaded model; raises RunnerError for a missing runtime, anything else for a
                             file it cannot load (the caller names the file). batch=None: the file's own input
                             shape (batch 1, the runner); a number: the batch one run takes when the file's
                             batch dimension is dynamic (validation).
    audit(path) -> dict      the fast-path audit of a file on this machine: {"runtime": FAST_PATH, "ops",
                             "partitions" (int or None), "fast": {op: n}, "slow": {op: n}, "edge": {op: n},
                             "on_fast_path": bool} (manifest entries' `fast_path`, docs/architecture.md).
  optional:
    ALSO_MEASURED: bool      True: where installed, measured (bench, validate) beside the container's first
                             runtime rather than only when asked for (OpenVINO beside ONNX Runtime).
    incompatible(device) -> str | None   why the installed runtime cannot import on a probed python, as
                             "received ...; fix: ..." text ("{python}" is replaced by the python command),
                             e.g. tflite-runtime beside numpy 2. `device` is the probe's dict (_probe.probe).
    unusable(name, device) -> str | None why name NAME would fail on that device's CPU, as a whole
                             "expected ..., received ..." sentence (litert-compiled without LSE atomics).
    safe_name(name, device) -> str       the name to run instead where NAME is unusable (litert ->
                             litert-interpreter on a Raspberry Pi 4).
    prepare(name, path) -> context       what load() needs made before timing starts (litert: the file's
                             description for a CompiledModel); passed to load() and choose().
    choose(name, path, threads, context, trial, notes) -> name
                             a concrete name for a name that picks among several (litert: CompiledModel vs
                             Interpreter); `trial({name: backend}) -> {name: p50 ms}` is the runner's.

A backend has: `init_ms` (load time), `batch` (what one run takes; None when its batch dimension takes any batch
as fed), `inputs` and `outputs` (lists of {"name", "shape", "dtype" (a
numpy dtype), "scale" (None when float), "zero_point"}), `delegate` (str or None), `fast_path` (the audit dict
of what it runs on, or None until the first feed), `feed(arrays)` (one array per input), `run()` (one
inference, what the runner times) and `output()` (the first output as a numpy array).
"""
from __future__ import annotations

import importlib
from pathlib import Path

MEMBERS = ("litert", "tflite_runtime", "onnxruntime", "tflite_micro", "openvino")  # module names, in the default preference order


def members() -> list:
    """The member modules, in MEMBERS order."""
    return [importlib.import_module(f".{name}", __name__) for name in MEMBERS]


def also_measured() -> tuple[str, ...]:
    """The first name of every member with `ALSO_MEASURED = True` that is installed here: benchmarked and
    validated beside its container's first runtime (OpenVINO beside ONNX Runtime)."""
    from ._common import installed

    return tuple(m.NAMES[0] for m in members() if getattr(m, "ALSO_MEASURED", False) and installed(m.MODULE))


def names() -> tuple[str, ...]:
    """Every runner name, member by member."""
    return tuple(n for m in members() for n in m.NAMES)


def module_of(name: str):
    """The member that answers to runner name `name`; KeyError for an unknown name."""
    for m in members():
        if name in m.NAMES:
            return m
    raise KeyError(name)


def default_preference() -> tuple[str, ...]:
    """Each member's first name, in MEMBERS order: what `auto` tries."""
    return tuple(m.NAMES[0] for m in members())


def containers() -> tuple[str, ...]:
    """The containers some member runs, in MEMBERS order ("tflite", "onnx")."""
    return tuple(dict.fromkeys(m.CONTAINER for m in members()))


def container_of(name: str) -> str:
    return module_of(name).CONTAINER


def names_for(container: str) -> tuple[str, ...]:
    """The first name of every member that runs `container`, in preference order."""
    return tuple(m.NAMES[0] for m in members() if m.CONTAINER == container)


def incompatible(name: str, device: dict):
    check = getattr(module_of(name), "incompatible", None)
    return check(device) if check else None


def unusable(name: str, device: dict):
    check = getattr(module_of(name), "unusable", None)
    return check(name, device) if check else None


def safe_name(name: str, device: dict) -> str:
    pick = getattr(module_of(name), "safe_name", None)
    return pick(name, device) if pick else name


def probe_script() -> str:
    """Python source that prints the probe's JSON line for every member's module (run as `python -c`)."""
    pairs = ", ".join(f"({m.MODULE!r}, {m.PIP!r})" for m in members())
    source = (Path(__file__).with_name("_probe.py")).read_text()
    return f"{source}\nimport json\nprint(json.dumps(probe(({pairs},))))\n"
