"""Time per op and per layer of one model file, with the runtime that will run it. Standalone like runner.py:
the standard library, numpy and the runtime only (LiteRT also needs `flatbuffers`, a dependency of ai-edge-litert).

- ONNX Runtime: its own profiler (`SessionOptions.enable_profiling`): every node's kernel time in every run;
  the p50 over runs per node; the whole model is the profiler's `model_run` event.
- OpenVINO: its per-layer performance counts (`PERF_COUNT`): real time of every executed layer of the runtime
  model (after OpenVINO's fusions), p50 over runs; the whole model is `infer()` timed around it.
- LiteRT: its Python packages have no op profiler, so each op is cut out of the flatbuffer into a model of its
  own (its inputs become the model's inputs, its constants come along), loaded with the same delegate
  (XNNPACK) and thread count, and timed; the cost of one `invoke()` from Python (a one-element ADD model) is
  subtracted from each. The model is also cut into blocks where a single tensor is live (between residual
  blocks) and each block timed the same way. The parts are checked against the whole model timed alone:
  `residual_ms` = whole - (sum of ops + one invoke), and the same for blocks, is what the cut does not see
  (hand-over between ops inside one XNNPACK graph, caches warmed by the previous op).

Every model is loaded once and all are timed in interleaved rounds, so load that comes and goes hits all alike.
The record: {"file", "runtime", "version", "threads", "method", "whole_ms", "sum_ms", "residual_ms",
"layers": [{"index", "name", "op", "ms", "share"}], "by_op": [{"op", "count", "ms", "share"}], "blocks": [...]}.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict

import numpy as np

from ._tflite_cut import _enum_names, _op_name, blocks_of, cut, delegated, invoke_cost_model, static_ops  # noqa: F401

METHODS = {
    "onnxruntime": "onnxruntime profiler (enable_profiling): per-node kernel time, p50 over runs",
    "openvino": "OpenVINO performance counts (PERF_COUNT): per-layer real time of the runtime model, p50 over runs",
    "litert": "each op cut out of the flatbuffer into its own model (same delegate and threads), the cut ops "
              "invoked once each in graph order, round after round, with the whole model; p50 per op minus the cost "
              "of one invoke(); parts checked against the whole",
}


def _median(values) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64))) if len(values) else 0.0


def summarise(layers: list[dict], whole_ms: float, extra_ms: float = 0.0) -> dict:
    """Shares, per-op-type totals and the residual of a list of {"name", "op", "ms"}."""
    total = sum(layer["ms"] for layer in layers) + extra_ms
    for layer in layers:
        layer["ms"] = round(layer["ms"], 4)
        layer["share"] = round(layer["ms"] / whole_ms, 4) if whole_ms else None
    by_op = defaultdict(lambda: [0, 0.0])
    for layer in layers:
        by_op[layer["op"]][0] += 1
        by_op[layer["op"]][1] += layer["ms"]
    return {"whole_ms": round(whole_ms, 4), "sum_ms": round(total, 4), "residual_ms": round(whole_ms - total, 4),
            "layers": layers,
            "by_op": sorted(({"op": op, "count": n, "ms": round(ms, 4), "share": round(ms / whole_ms, 4) if whole_ms else None}
                             for op, (n, ms) in by_op.items()), key=lambda r: -r["ms"])}


def random_feed(shape, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(info.max, 255) + 1, shape).astype(dtype)
    return rng.uniform(-1, 1, shape).astype(dtype)


# ---------------------------------------------------------------- ONNX Runtime

def profile_onnxruntime(path: str, threads: int, runs: int = 50) -> dict:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as scratch:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(scratch, "ort")
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        type_map = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
                    "tensor(float16)": np.float16}
        feeds = {i.name: random_feed([d if isinstance(d, int) else 1 for d in i.shape], type_map.get(i.type, np.float32))
                 for i in session.get_inputs()}
        for _ in range(runs + 1):
            session.run(None, feeds)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    nodes, ops, whole = defaultdict(list), {}, []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            nodes[name].append(e["dur"] / 1000)
            ops[name] = e.get("args", {}).get("op_name", "?")
        elif e.get("cat") == "Session" and e.get("name") == "model_run":
            whole.append(e["dur"] / 1000)
    layers = [{"index": i, "name": name, "op": ops[name], "ms": _median(durs[1:] or durs)}
              for i, (name, durs) in enumerate(nodes.items())]
    return {"runtime": "onnxruntime", "version": ort.__version__, "threads": threads, "runs": runs,
            "method": METHODS["onnxruntime"], **summarise(layers, _median(whole[1:] or whole))}


# ---------------------------------------------------------------- OpenVINO

def profile_openvino(path: str, threads: int, runs: int = 50) -> dict:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    model.reshape({i.get_any_name(): [d.get_length() if d.is_static else 1 for d in i.get_partial_shape()]
                   for i in model.inputs})  # a dynamic batch becomes 1, as the runner times it
    compiled = core.compile_model(model, "CPU", {"PERF_COUNT": True, "INFERENCE_NUM_THREADS": threads,
                                                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    for i, port in enumerate(compiled.inputs):
        request.set_input_tensor(i, ov.Tensor(random_feed(list(port.get_shape()), port.get_element_type().to_dtype())))
    for _ in range(10):
        request.infer()
    layers, whole, kinds = defaultdict(list), [], {}
    for _ in range(runs):
        start = time.perf_counter()
        request.start_async()  # the cheapest call from Python: no output dictionary is built
        request.wait()
        whole.append((time.perf_counter() - start) * 1000)
        for info in request.profiling_info:
            if str(info.status).endswith(".EXECUTED"):
                layers[info.node_name].append(info.real_time.total_seconds() * 1000)
                kinds[info.node_name] = f"{info.node_type} ({info.exec_type})"
    rows = [{"index": i, "name": name, "op": kinds[name], "ms": _median(t)} for i, (name, t) in enumerate(layers.items())]
    return {"runtime": "openvino", "version": ov.get_version().split("-")[0], "threads": threads, "runs": runs,
            "inference_precision": compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "method": METHODS["openvino"], **summarise(rows, _median(whole))}


# ---------------------------------------------------------------- LiteRT (cut models: _tflite_cut.py)

def in_graph_order(runs: dict, seconds: float = 2.0, most: int = 300) -> dict:
    """{"p50", "min"} ms of each callable in `runs`, invoked once each, in the given order, round after round.

    The order is the graph's, so each cut op finds the caches as the previous op leaves them in the whole
    model (its weights not hot from a loop over itself), and load that comes and goes hits every op alike.
    """
    for run in runs.values():
        for _ in range(2):
            run()
    start = time.perf_counter()
    for run in runs.values():
        run()
    rounds = max(20, min(most, int(seconds / max(time.perf_counter() - start, 1e-6))))
    times = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append((time.perf_counter() - start) * 1000)
    return {key: {"p50": _median(t), "min": float(np.min(t)), "rounds": rounds} for key, t in times.items()}


def _litert_interpreter(data: bytes, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=threads)
    interpreter.allocate_tensors()
    for i, detail in enumerate(interpreter.get_input_details()):
        interpreter.set_tensor(detail["index"], random_feed(detail["shape"], detail["dtype"], i))
    return interpreter


def profile_litert(path: str, threads: int, seconds: float = 2.0) -> dict:
    import ai_edge_litert
    from ai_edge_litert import schema_py_generated as tfl

    with open(path, "rb") as f:
        data = f.read()
    flat = tfl.ModelT.InitFromPackedBuf(data, 0)
    names = _enum_names(tfl.BuiltinOperator)
    graph = flat.subgraphs[0]
    blocks = blocks_of(flat)
    models = {"whole": data, "invoke": invoke_cost_model()}
    static = static_ops(flat)  # folded at load time: timed with the op that reads them
    timed = [i for i in range(len(graph.operators)) if i not in static]
    models |= {("op", i): cut(flat, [i]) for i in timed}
    models |= {("block", b): cut(flat, ops) for b, ops in enumerate(blocks)}
    interpreters = {key: _litert_interpreter(m, threads) for key, m in models.items()}
    stats = in_graph_order({key: it.invoke for key, it in interpreters.items()}, seconds)
    p50 = {key: v["p50"] for key, v in stats.items()}
    invoke = p50["invoke"]
    # On a busy machine a long run (the whole model) is preempted more often than a short one (one op): the
    # fastest runs, summed the same way, are the comparison that load does not skew.
    low = {key: v["min"] for key, v in stats.items()}
    sum_min = sum(max(low[("op", i)] - low["invoke"], 0.0) for i in timed) + low["invoke"]
    in_whole = delegated(interpreters["whole"])
    block_of = {i: b for b, ops in enumerate(blocks) for i in ops}
    layers = []
    for i in timed:
        op = graph.operators[i]
        out = graph.tensors[op.outputs[0]].name.decode(errors="replace")
        layers.append({"index": i, "name": out.split(";")[0][:120], "op": _op_name(flat, op, names),
                       "ms": max(p50[("op", i)] - invoke, 0.0),
                       "min_ms": round(max(low[("op", i)] - low["invoke"], 0.0), 4), "block": block_of[i],
                       "delegated": i in in_whole,
                       "delegated_when_cut": bool(delegated(interpreters[("op", i)]))})
    record = summarise(layers, p50["whole"], invoke)
    block_rows = []
    for b, ops in enumerate(blocks):
        parts = sum(layer["ms"] for layer in layers if layer["block"] == b)
        block_rows.append({"block": b, "ops": [ops[0], ops[-1]], "ms": round(p50[("block", b)] - invoke, 4),
                           "sum_of_ops_ms": round(parts, 4)})
    blocks_sum = sum(r["ms"] for r in block_rows) + invoke
    # An op the whole graph leaves to a builtin kernel but XNNPACK takes alone (or the reverse) is not timed as it runs.
    differs = [layer["index"] for layer in layers if layer["delegated"] != layer["delegated_when_cut"]]
    # Each cut model has its own XNNPACK thread pool, woken for every op; the whole model keeps one pool busy.
    caveat = (f"{threads} threads: every cut op wakes its own thread pool, which the whole model does once; "
              "per-op shares are truer at 1 thread" if threads > 1 else None)
    return {"runtime": "litert", "version": getattr(ai_edge_litert, "__version__", None), "threads": threads,
            "caveat": caveat, "delegation_differs": differs, "whole_min_ms": round(low["whole"], 4), "sum_min_ms": round(sum_min, 4),
            "rounds": stats["whole"]["rounds"], "method": METHODS["litert"], "invoke_ms": round(invoke, 4), "folded_ops": len(static),
            **record,
            "blocks": block_rows, "blocks_sum_ms": round(blocks_sum, 4),
            "blocks_residual_ms": round(p50["whole"] - blocks_sum, 4)}


# The CPU features int8 and fp32 kernels pick their code paths by (x86: VNNI, AMX; ARM: dot product, i8mm).
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8",
                "asimd", "asimddp", "i8mm", "sve", "bf16")


def cpu_flags() -> list[str]:
    """The KERNEL_FLAGS this CPU has (/proc/cpuinfo), recorded with every timing."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return []
    have = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            have |= set(value.split())
    return [flag for flag in KERNEL_FLAGS if flag in have]


PROFILERS = {"litert": profile_litert, "onnxruntime": profile_onnxruntime, "openvino": profile_openvino}


def profile(path: str, runtime: str, threads: int) -> dict:
    """The per-op record of `path` on `runtime` ("litert" | "onnxruntime" | "openvino")."""
    record = PROFILERS[runtime](path, threads)
    return {"file": os.path.basename(path), **record}


def top_layers(record: dict, k: int = 5) -> list[dict]:
    return sorted(record["layers"], key=lambda r: -r["ms"])[:k]
