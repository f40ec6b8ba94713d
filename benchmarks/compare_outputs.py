#!/usr/bin/env python3
"""Are two output folders of the pipeline the same? Every file by sha256; where bytes differ, by content.

Used to prove that a refactoring changed no output: run the reference variant with the old code and with the
new one (the same OUT path and the same repository path for both, since manifests record paths), then

    python benchmarks/compare_outputs.py /tmp/ref-old /tmp/ref-new

Two files of the pipeline are not byte-reproducible even between two runs of the same code, so when their
bytes differ they are compared by content:
  .onnx    tf2onnx names the constants it deduplicates in a varying order: the graphs are compared with every
           tensor and node renamed by position (op types, attributes, initializer values and metadata exact);
  .keras   Keras writes the save date into metadata.json and Python object ids into config.json: compared
           without the date, with the ids renumbered by first appearance, and every weight array by value.
Files that only record those bytes (sha256 and size in manifests, validation records, the report and the size
plot) are compared with the sha256/size of canonically equal files substituted, and with the report's
generation time and the digest of its inputs masked. The report's plots are drawn from summary.json, and the
size plot draws the .keras file's size, which varies by a few bytes with those ids: a plot (and report.html,
which embeds the plots) counts as equal when summary.json does, report.html with its embedded images masked. Anything else must be byte-identical. Exit 0 when every file matches, 1 otherwise,
2 for bad input.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canonical_onnx(path: Path) -> bytes:
    """The graph as a structure, independent of tensor names and node order.

    Every tensor gets a digest of what computes it (graph input position, initializer value, or the producing
    node's op type, attributes and input digests); the model's digest covers every node's, the outputs', the
    opsets and the metadata. tf2onnx and onnxruntime's quantizer name and order the same graph differently
    from run to run; this sees only what the graph computes.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = {v.name: i for i, v in enumerate(graph.input)}
    producer = {out: (node, i) for node in graph.node for i, out in enumerate(node.output)}
    memo: dict[str, str] = {}

    def tensor(name: str) -> str:
        if name not in memo:
            if not name:
                memo[name] = ""
            elif name in inputs:
                memo[name] = f"input{inputs[name]}"
            elif name in initializers:
                t = initializers[name]
                memo[name] = hashlib.sha256(repr((t.data_type, tuple(t.dims))).encode()
                                            + numpy_helper.to_array(t).tobytes()).hexdigest()
            else:
                node, index = producer[name]
                memo[name] = hashlib.sha256(repr((node_digest(node), index)).encode()).hexdigest()
        return memo[name]

    def node_digest(node) -> str:
        attrs = sorted((a.name, a.SerializeToString(deterministic=True)) for a in node.attribute)
        return hashlib.sha256(repr((node.domain, node.op_type, attrs, [tensor(n) for n in node.input])).encode()
                              ).hexdigest()

    whole = (sorted(node_digest(n) for n in graph.node), [tensor(v.name) for v in graph.output],
             sorted((o.domain, o.version) for o in model.opset_import), model.ir_version,
             sorted((m.key, m.value) for m in model.metadata_props))
    return repr(whole).encode()


def canonical_keras(path: Path) -> bytes:
    """config.json, metadata.json without its save date, and every weight array, as one digest."""
    import h5py  # installed with Keras

    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            data = archive.read(name)
            if name == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta, sort_keys=True).encode()
            elif name == "config.json":  # Python object ids of shared objects, renumbered by first appearance
                ids: dict[bytes, bytes] = {}
                data = SHARED_ID.sub(lambda m: b'"shared_object_id": '
                                     + ids.setdefault(m[1], str(len(ids)).encode()), data)
            elif name.endswith(".h5"):
                arrays = []
                with h5py.File(io.BytesIO(data), "r") as h5:
                    h5.visititems(lambda key, item: arrays.append((key, item[()].tobytes()))
                                  if isinstance(item, h5py.Dataset) else None)
                data = repr(sorted(arrays)).encode()
            digest.update(name.encode() + b"\0" + data)
    return digest.digest()


CANONICAL = {".onnx": canonical_onnx, ".keras": canonical_keras}
SHARED_ID = re.compile(rb'"shared_object_id": (\d+)')
GENERATED = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d UTC|\"inputs_sha256\": \"[0-9a-f]{64}\"")
EMBEDDED_IMAGE = re.compile(rb"data:image/png;base64,[A-Za-z0-9+/=]+")
SUMMARY = Path("summary.json")


def compare(old: Path, new: Path) -> list[tuple[str, str]]:
    """(relative path, verdict) for every file in either folder: identical | canonical | DIFFERS | MISSING ..."""
    files = sorted({p.relative_to(root) for root in (old, new) for p in root.rglob("*") if p.is_file()})
    verdicts: dict[Path, str] = {}
    swaps: list[tuple[bytes, bytes]] = []  # (new bytes, old bytes) to substitute in the files that record them
    for rel in files:
        a, b = old / rel, new / rel
        if not (a.is_file() and b.is_file()):
            verdicts[rel] = f"MISSING in {'old' if not a.is_file() else 'new'}"
        elif sha256(a) == sha256(b):
            verdicts[rel] = "identical"
        elif rel.suffix in CANONICAL and CANONICAL[rel.suffix](a) == CANONICAL[rel.suffix](b):
            verdicts[rel] = "canonical"
            swaps += [(sha256(b).encode(), sha256(a).encode())]
            if a.stat().st_size != b.stat().st_size:
                swaps.append((str(b.stat().st_size).encode(), str(a.stat().st_size).encode()))
    plots = [rel for rel in files if rel not in verdicts and rel.suffix == ".png" and rel.parent.name == "plots"]
    for rel in files:
        if rel in verdicts or rel in plots:
            continue
        a, b = (old / rel).read_bytes(), (new / rel).read_bytes()
        for ours, theirs in swaps:
            b = b.replace(ours, theirs)
        a, b = GENERATED.sub(b"<time>", a), GENERATED.sub(b"<time>", b)
        if rel.suffix == ".html":
            a, b = EMBEDDED_IMAGE.sub(b"<plot>", a), EMBEDDED_IMAGE.sub(b"<plot>", b)
        verdicts[rel] = "identical once the canonical files' sha256/size are substituted" if a == b else "DIFFERS"
    summary_equal = verdicts.get(SUMMARY, "DIFFERS") != "DIFFERS" and not verdicts.get(SUMMARY, "").startswith("MISSING")
    for rel in plots:
        verdicts[rel] = "drawn from summary.json, which is equal" if summary_equal else "DIFFERS"
    return [(str(rel), verdicts[rel]) for rel in files]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            print(f"error: expected an output folder, received {str(folder)!r}", file=sys.stderr)
            return 2
    rows = compare(args.old, args.new)
    width = max((len(r) for r, _ in rows), default=0)
    for rel, verdict in rows:
        print(f"{rel.ljust(width)}  {verdict}")
    bad = [r for r, v in rows if v == "DIFFERS" or v.startswith("MISSING")]
    kinds = {v: sum(1 for _, w in rows if w == v) for v in dict.fromkeys(v for _, v in rows)}
    print(f"{len(rows)} files: " + ", ".join(f"{n} {v}" for v, n in kinds.items()), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
