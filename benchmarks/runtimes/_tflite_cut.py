"""Cutting a .tflite flatbuffer into smaller models (one op, a block of ops) for the LiteRT op profiler
(_op_profile.py). Standard library + ai-edge-litert's schema + flatbuffers (a dependency of ai-edge-litert)."""
from __future__ import annotations

import copy

def _enum_names(enum) -> dict:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _op_name(flat, op, names) -> str:
    code = flat.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    name = names.get(builtin, str(builtin))
    return code.customCode.decode() if name == "CUSTOM" and code.customCode else name


def _is_constant(flat, tensor) -> bool:
    return bool(tensor.buffer) and flat.buffers[tensor.buffer].data is not None and len(flat.buffers[tensor.buffer].data) > 0


def _pack(flat) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    class Aligned(tfl.BufferT):  # weights on 16-byte boundaries, as the converter leaves them
        def Pack(self, builder):
            data = None
            if self.data is not None:
                raw = bytes(self.data)
                builder.Prep(16, len(raw))
                data = builder.CreateByteVector(raw)
            tfl.BufferStart(builder)
            if data is not None:
                tfl.BufferAddData(builder, data)
            return tfl.BufferEnd(builder)

    flat.buffers = [Aligned(b.data) if b.data is not None else tfl.BufferT() for b in flat.buffers]
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def static_ops(flat) -> dict[int, int]:
    """Ops computed from constants alone (fp16 files' DEQUANTIZE of the weights), as {op index: its output}:
    runtimes fold them at load time, so each goes with the op that reads its output rather than on its own."""
    graph = flat.subgraphs[0]
    constant = {t for t, tensor in enumerate(graph.tensors) if _is_constant(flat, tensor)}
    static = {}
    for i, op in enumerate(graph.operators):
        if all(t < 0 or t in constant for t in op.inputs):
            static[i] = op.outputs[0]
            constant |= set(op.outputs)
    return static


def with_static_inputs(flat, indices: list[int], static: dict[int, int]) -> list[int]:
    """`indices` plus the static ops that make their inputs, in graph order."""
    made_by = {out: i for i, out in static.items()}
    wanted, stack = set(indices), [t for i in indices for t in flat.subgraphs[0].operators[i].inputs]
    while stack:
        producer = made_by.get(stack.pop())
        if producer is not None and producer not in wanted:
            wanted.add(producer)
            stack.extend(flat.subgraphs[0].operators[producer].inputs)
    return sorted(wanted)


def cut(flat, indices: list[int]) -> bytes:
    """A .tflite of ops `indices` of subgraph 0: inputs = the non-constant tensors they read but do not make,
    outputs = the tensors they make that a later op or the graph reads (or the last op's outputs)."""
    from ai_edge_litert import schema_py_generated as tfl

    graph = flat.subgraphs[0]
    indices = with_static_inputs(flat, indices, static_ops(flat))
    chosen = set(indices)
    ops = [graph.operators[i] for i in indices]
    made = [t for op in ops for t in op.outputs]
    read = [t for op in ops for t in op.inputs if t >= 0]
    read_later = {t for i, op in enumerate(graph.operators) if i not in chosen for t in op.inputs if t >= 0}
    inputs = list(dict.fromkeys(t for t in read if t not in made and not _is_constant(flat, graph.tensors[t])))
    folded = set(static_ops(flat).values())
    outputs = [t for t in made if (t in read_later or t in list(graph.outputs)) and t not in folded] or list(ops[-1].outputs)
    keep = list(dict.fromkeys([*inputs, *read, *made, *(t for op in ops for t in (op.intermediates or []))]))
    where = {t: i for i, t in enumerate(keep)}
    buffers, tensors = [tfl.BufferT()], []
    for t in keep:
        tensor = copy.copy(graph.tensors[t])
        if _is_constant(flat, tensor):
            buffers.append(flat.buffers[tensor.buffer])
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
        tensors.append(tensor)
    sub = tfl.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.name = tensors, [where[t] for t in inputs], [where[t] for t in outputs], b"cut"
    sub.operators = []
    for op in ops:
        new = copy.copy(op)
        new.inputs = [where[t] if t >= 0 else t for t in op.inputs]
        new.outputs = [where[t] for t in op.outputs]
        new.intermediates = [where[t] for t in op.intermediates] if op.intermediates is not None else None
        sub.operators.append(new)
    model = tfl.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = flat.version, flat.operatorCodes, [sub], buffers
    model.description = b"cut"
    return _pack(model)


def invoke_cost_model() -> bytes:
    """A one-element float ADD: what one invoke() from Python costs, subtracted from every cut op."""
    from ai_edge_litert import schema_py_generated as tfl

    code = tfl.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.ADD
    code.version = 1
    tensors = []
    for name in (b"a", b"sum"):
        t = tfl.TensorT()
        t.shape, t.type, t.buffer, t.name = [1], tfl.TensorType.FLOAT32, 0, name
        tensors.append(t)
    op = tfl.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 0], [1]
    op.builtinOptionsType, op.builtinOptions = tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT()
    sub = tfl.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators = tensors, [0], [1], [op]
    model = tfl.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [sub], [tfl.BufferT()]
    return _pack(model)


def blocks_of(flat) -> list[list[int]]:
    """Runs of ops between the points where exactly one activation tensor is live (MobileNet's block borders)."""
    graph = flat.subgraphs[0]
    n = len(graph.operators)
    last_use = {}
    for i, op in enumerate(graph.operators):
        for t in op.inputs:
            if t >= 0:
                last_use[t] = i
    for t in graph.outputs:
        last_use[t] = n
    static = static_ops(flat)
    blocks, current, live = [], [], set(graph.inputs)
    for i, op in enumerate(graph.operators):
        if i in static:  # weights: go with the op that reads them
            continue
        current.append(i)
        live |= set(op.outputs)
        live = {t for t in live if last_use.get(t, -1) > i}
        if len(live) <= 1:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def delegated(interpreter) -> set:
    """Indices of the original ops inside a delegate partition (walked back from each DELEGATE node's outputs)."""
    ops = interpreter._get_ops_details()  # private, but the only view of the delegated graph in Python
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    inputs_of = {op["index"]: [int(t) for t in op["inputs"] if t >= 0] for op in original}
    inside = set()
    for node in (op for op in ops if op["op_name"] == "DELEGATE"):
        boundary, stack = {int(t) for t in node["inputs"]}, [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            index = producer.get(tensor)
            if tensor in boundary or index is None or index in inside:
                continue
            inside.add(index)
            stack.extend(inputs_of[index])
    return inside
