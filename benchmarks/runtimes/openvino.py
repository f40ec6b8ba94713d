"""OpenVINO: .onnx files (fp32 and QDQ int8) compiled for its CPU plugin.

Runner name: `openvino`. Standard library + numpy + openvino only. An optional extra (`pip install openvino`,
requirements-openvino.lock): where it is missing (a Raspberry Pi) nothing else changes. On x86 it is measured
beside ONNX Runtime (`ALSO_MEASURED`): `make bench` and `make validate` give each .onnx file a row per runtime.

The CPU plugin picks its own precision: on a CPU with AMX or AVX512-BF16 an fp32 file runs in bf16 unless told
otherwise. Here it is told f32 (`INFERENCE_PRECISION_HINT`): a file runs at its own precision, so its validation
row is that of the file that ships (in bf16, V2's fp32 file failed the fp32 gate's agreement). The backend's
`delegate` says the precision ("CPU f32"). The audit reads OpenVINO's runtime model (`compiled_model.get_runtime_model()`): each
executed layer's `layerType` and `runtimePrecision` (u8/i8: integer kernels; f32/bf16: float).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ._common import RunnerError, counts, import_module, ms_since, module_version, one_line

NAMES = ("openvino",)
CONTAINER = "onnx"
MODULE = "openvino"
PIP = "openvino"
INSTALL = "pip install openvino"
FAST_PATH = "openvino-cpu"
ALSO_MEASURED = True  # benchmarked and validated beside the container's first runtime when installed

INTEGER = frozenset({"u8", "i8", "u4", "i4"})
# Layers that compute nothing worth naming (constants, graph edges, layout).
IGNORED = frozenset({"Const", "Input", "Output", "Parameter", "Result", "Reshape", "Squeeze", "Unsqueeze",
                     "Transpose", "Concatenation", "Gather"})
# Conversions at the graph's edges: precision/layout reorders, the classifier's softmax.
EDGE = frozenset({"Reorder", "Softmax", "Convert"})


def version():
    module = sys.modules.get(MODULE)
    full = module.get_version() if module is not None and hasattr(module, "get_version") else module_version(MODULE)
    return full.split("-")[0] if full else None


def _ov():
    return import_module(sys.modules[__name__])


def compile_file(ov, path: str, threads: int, batch: int | None = None):
    """(core, compiled model) of `path`; a dynamic batch dimension becomes `batch` (None: 1, as the runner runs)."""
    core = ov.Core()
    model = core.read_model(path)
    shapes = {}
    for port in model.inputs:
        dims = list(port.get_partial_shape())
        shapes[port.get_any_name()] = [d.get_length() if d.is_static else (batch or 1) for d in dims]
    model.reshape(shapes)
    # f32: an fp32 file is measured and validated as fp32 (the plugin's default on AMX / AVX512-BF16 CPUs is bf16,
    # which failed the fp32 gate's agreement on V2: a different precision, not this file's).
    return core, core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                   "INFERENCE_PRECISION_HINT": "f32"})


def load(name: str, path: str, threads: int, *, batch: int | None = None, context=None):
    return OpenVinoBackend(_ov(), path, threads, batch)


class OpenVinoBackend:
    """One compiled model and one infer request. batch=None: batch 1 (the runner); a number (validation): that
    batch, fixed (the last batch is padded by the caller)."""

    def __init__(self, ov, path: str, threads: int, batch: int | None = None):
        start = time.perf_counter()
        try:
            _, self.compiled = compile_file(ov, path, threads, batch)
        except RuntimeError as exc:
            raise RuntimeError(one_line(exc)) from exc
        self.request = self.compiled.create_infer_request()
        self.init_ms = ms_since(start)
        precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.delegate = f"CPU {precision}"  # what the plugin computes float layers in
        self.batch = batch
        self.inputs = [{"name": p.get_any_name(), "shape": list(p.get_shape()), "dtype": np.dtype(p.get_element_type().to_dtype()),
                        "scale": None, "zero_point": 0} for p in self.compiled.inputs]
        self.outputs = [{"name": p.get_any_name(), "shape": list(p.get_shape()), "dtype": np.dtype(p.get_element_type().to_dtype()),
                         "scale": None, "zero_point": 0} for p in self.compiled.outputs]
        self.fast_path = runtime_model_audit(self.compiled)
        self._ov = ov

    def feed(self, arrays):
        for i, array in enumerate(arrays):
            self.request.set_input_tensor(i, self._ov.Tensor(np.ascontiguousarray(array)))

    def run(self):
        self.request.start_async()  # start + wait: no output dictionary is built per run
        self.request.wait()

    def output(self) -> np.ndarray:
        return self.request.get_output_tensor(0).data.copy()


def runtime_model_audit(compiled) -> dict:
    """Which layers of OpenVINO's runtime model compute in integer and which in float (`runtimePrecision`).

    In a quantized graph, integer layers are fast and float compute layers between them slow (a QDQ group the
    plugin did not fuse); reorders, conversions, the softmax and the float layers before the first / after the
    last integer layer (quantizing the float input, the classifier's end) are the edge. In a float graph every
    compute layer is fast."""
    layers = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        if kind in IGNORED:
            continue
        layers.append((kind, info["runtimePrecision"].astype(str)))
    integer = [i for i, (kind, precision) in enumerate(layers) if precision in INTEGER and kind not in EDGE]
    fast, slow, edge = [], [], []
    for i, (kind, precision) in enumerate(layers):
        label = f"{kind} {precision}"
        # Float layers before the first or after the last integer layer convert the float I/O: the edge.
        outside = bool(integer) and (i < integer[0] or i > integer[-1])
        if kind in EDGE or (outside and precision not in INTEGER):
            edge.append(label)
        elif not integer or precision in INTEGER:
            fast.append(label)
        else:
            slow.append(label)
    return {"runtime": FAST_PATH, "ops": len(layers), "partitions": None, "fast": counts(fast), "slow": counts(slow),
            "edge": counts(edge), "on_fast_path": not slow}


def audit(path) -> dict:
    """The fast-path audit of a .onnx file in OpenVINO's CPU plugin (see runtime_model_audit)."""
    ov = _ov()
    try:
        _, compiled = compile_file(ov, str(path), 1)
    except Exception as exc:
        raise RunnerError(f"expected {path} to compile in OpenVINO, received {one_line(exc)}") from exc
    return runtime_model_audit(compiled)
