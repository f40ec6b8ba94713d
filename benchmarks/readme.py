#!/usr/bin/env python3
"""The README's measured tables, generated from the committed records that measured them.

    python benchmarks/readme.py            # rewrite every generated block of README.md and docs/*.md
    python benchmarks/readme.py --check    # exit 1 naming each block that differs (the test suite runs this)

A generated block is the text between `<!-- begin:NAME -->` and `<!-- end:NAME -->`, in README.md or a guide
under docs/ (each name once). `BLOCKS` maps each
NAME to the function that renders it from its records, so a figure in the README is never typed by hand:
re-measure (the script that measured it writes the record), then run this.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CHECKPOINTS = ROOT / "pipeline" / "checkpoints" / "fashion-mnist"
RECORDS = ROOT / "benchmarks" / "records"



def _archs():
    """The architecture registry, in its order (the tables list the family in that order)."""
    from mobilenet_edge.pipeline.archs import ARCHS

    return ARCHS


def checkpoints_table() -> str:
    """Reference checkpoints: how each was trained (its record's stages), top-1 per side, size, time."""
    order = {key: i for i, key in enumerate(_archs())}
    records = sorted((json.loads(p.read_text()) | {"_weights": p.with_name(p.name.replace(".json", ".weights.h5"))}
                      for p in CHECKPOINTS.glob("*.json")), key=lambda r: (order[r["arch"]], r["alpha"]))
    sides = sorted({int(s) for r in records for s in r["resolutions"]})
    rows = ["| model | how it was trained (`make train`, see the record's `stages`) | top-1 at "
            f"{' / '.join(map(str, sides))} px (10,000 test images) | weights file | train time here |",
            "|---|---|---|---|---|"]
    for r in records:
        stages = "; then ".join(f"{s['config']['epochs']} epochs {s['what']}, lr {s['config']['learning_rate']:g}"
                                for s in r["stages"])
        measured = r["accuracy_by_resolution"]  # a side the checkpoint was not trained at: —
        accuracy = " / ".join(f"{100 * measured[str(s)]:.1f}" if s in r["resolutions"] else "—" for s in sides)
        minutes = sum(s["seconds"] for s in r["stages"]) / 60
        rows.append(f"| {_archs()[r['arch']].short_title} {r['alpha']:.2f} | {stages} | {accuracy} % | "
                    f"{r['_weights'].stat().st_size / 1e6:.2f} MB | {minutes:.0f} min |")
    return "\n".join(rows)


def family_cost_table() -> str:
    """Mult-Adds and parameters of each architecture at 1.0-224 from the cost model, beside the papers' (at the side
    the paper prints, when that is not 224 px), and int8's speed-up over fp32 from benchmarks/int8_speed.py's record."""
    from mobilenet_edge.benchmarks import int8_speed
    from mobilenet_edge.pipeline.cost.table import cost_table

    speed = json.loads(int8_speed.RECORD.read_text())
    ratios = {(r.get("member", r["arch"]), r.get("runtime") or r["format"], r["threads"]): r["ratio"]
              for r in speed["results"]}
    rows = ["| `ARCH` | Mult-Adds | published | parameters (weights only) | published | Keras `count_params()` | "
            "int8 speed-up over fp32, TFLite / ONNX Runtime / OpenVINO (1 thread) |",
            "|---|---|---|---|---|---|---|"]
    for arch in _archs():
        report = cost_table(1.0, 224, arch=arch)
        published, side = {}, 224
        for side in PAPER_SIDES:  # the first side a paper prints a figure for
            at = report if side == 224 else cost_table(1.0, side, arch=arch)
            if at.published:
                published = at.published[0].to_dict(at.total_mult_adds, at.total_params)
                break
        ours = ((f" at {side} px, where this model has {at.total_mult_adds / 1e6:.0f} M", f" at {side} px")
                if published and side != 224 else ("", ""))
        speedups = " / ".join(f"×{ratios[(arch, rt, 1)]:.2f}" if (arch, rt, 1) in ratios else "—"
                              for rt in ("litert", "onnxruntime", "openvino"))
        rows.append(f"| `{arch}` | {report.total_mult_adds / 1e6:.1f} M | "
                    f"{_published(published, 'mult_adds')}{ours[0]} | {report.total_params / 1e6:.2f} M | "
                    f"{_published(published, 'params')}{ours[1]} | {report.keras_params / 1e6:.2f} M | {speedups} |")
    rows += ["", f"Published: the paper's figure and this cost model's difference to it at the paper's width and "
                 f"side (V4 Conv-M is printed at 256 px; docs/mobilenet-v4.md says why it differs). Speed-ups: fp32 p50 / int8 p50 at 224 px, random weights, measured "
                 f"{speed['generated_utc']} on {speed['host']['cpu']} by `benchmarks/int8_speed.py` "
                 f"(docs/quantization.md has both thread counts and the ops that cost int8 its speed)."]
    return "\n".join(rows)


PAPER_SIDES = (224, 256)  # where the papers print their cost figures (V1-V4 Conv-S at 224 px, V4 Conv-M at 256)


def _published(figures: dict, key: str) -> str:
    if not figures:
        return "—"
    return f"{figures[key + '_m']:g} M ({figures[key + '_diff_pct']:+.1f} %)"


def int8_speed_table() -> str:
    """fp32 vs int8 p50 of the family at 224 px (benchmarks/int8_speed.py's record)."""
    from mobilenet_edge.benchmarks import int8_speed

    return int8_speed.readme_table(json.loads(int8_speed.RECORD.read_text()))


def synthetic_calibration_table() -> str:
    """int8 top-1 with data-free vs real-image calibration (benchmarks/synthetic_calibration.py's record)."""
    from mobilenet_edge.benchmarks import synthetic_calibration

    return synthetic_calibration.readme_block(json.loads(synthetic_calibration.RECORD.read_text()))


def pipeline_bench_table() -> str:
    """How long the pipeline takes here (benchmarks/pipeline_bench.py's record)."""
    from mobilenet_edge.benchmarks import pipeline_bench

    return pipeline_bench.readme_table(json.loads(pipeline_bench.RECORD.read_text()))


def transfer_table() -> str:
    """Transfer from the reference backbone vs. from scratch on a photo-like folder (transfer_bench.py's record)."""
    from mobilenet_edge.benchmarks import transfer_bench

    return transfer_bench.table(json.loads(transfer_bench.RECORD.read_text()))


def own_classes_table() -> str:
    """Linear probe vs. default vs. longer budget on photo-like folders (own_classes_study.py's record)."""
    from mobilenet_edge.benchmarks import own_classes_study

    return own_classes_study.table(json.loads(own_classes_study.RECORD.read_text()))


def v3_int8_profile_table() -> str:
    """Where V3-Small's int8 time goes, part by part (benchmarks/v3_int8_profile.py's record)."""
    from mobilenet_edge.benchmarks import v3_int8_profile

    return v3_int8_profile.table(json.loads(v3_int8_profile.RECORD.read_text()))


def mcu_table() -> str:
    """V1 on a microcontroller: TFLite Micro's accuracy, arena, flash, Vela's figures (mcu_record.py's record)."""
    from mobilenet_edge.benchmarks import mcu_record

    return mcu_record.readme_table(json.loads(mcu_record.RECORD.read_text()))


def mqa_fastpath_table() -> str:
    """Mobile MQA (V4 Hybrid-M's attention) through the int8 converters and the fast-path audit (mqa_fastpath.py)."""
    from mobilenet_edge.benchmarks import mqa_fastpath

    return mqa_fastpath.table(json.loads(mqa_fastpath.RECORD.read_text()))


BLOCKS: dict[str, Callable[[], str]] = {
    "checkpoints": checkpoints_table,
    "family-cost": family_cost_table,
    "synthetic-calibration": synthetic_calibration_table,
    "int8-speed": int8_speed_table,
    "pipeline-bench": pipeline_bench_table,
    "transfer": transfer_table,
    "own-classes": own_classes_table,
    "v3-int8-profile": v3_int8_profile_table,
    "mcu": mcu_table,
    "mqa-fastpath": mqa_fastpath_table,
}

_BLOCK = re.compile(r"(<!-- begin:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end:(?P=name) -->)", re.S)


def documents() -> list[Path]:
    """The files that may hold generated blocks: README.md and the guides under docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def render(text: str, required=True) -> tuple[str, list[str]]:
    """Text with every generated block rendered anew, and the names of blocks that changed.

    `required`: every block of BLOCKS must be in `text` (a single README); False for one of several documents.
    """
    changed: list[str] = []

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise KeyError(f"expected a generated block named one of {', '.join(BLOCKS)}, received {name!r}")
        body = BLOCKS[name]().rstrip("\n") + "\n"
        if body != match["body"]:
            changed.append(name)
        return match.group(1) + body + match.group(4)

    new = _BLOCK.sub(fill, text)
    missing = set(BLOCKS) - set(m["name"] for m in _BLOCK.finditer(text))
    if required and missing:
        raise KeyError(f"expected README blocks for {', '.join(sorted(missing))}, received none")
    return new, changed


def block_text(name: str) -> str:
    """The body of generated block `name` as it stands in whichever document holds it."""
    for path in documents():
        match = next((m for m in _BLOCK.finditer(path.read_text()) if m["name"] == name), None)
        if match:
            return match["body"]
    raise KeyError(f"expected a document holding block {name!r}, received none among {len(documents())}")


def update(check: bool = False, paths: list[Path] | None = None) -> list[str]:
    """Render every block of `paths` (default: all documents, which together must hold every block once);
    write the files that changed unless `check`. Returns the names of the blocks that differed."""
    single = paths is not None and len(paths) == 1  # one document asked for: it must hold every block
    paths = paths or documents()
    seen: list[str] = []
    changed: list[str] = []
    for path in paths:
        text = path.read_text()
        seen += [m["name"] for m in _BLOCK.finditer(text)]
        new, differs = render(text, required=single)
        changed += differs
        if differs and not check:
            tmp = path.with_suffix(".md.tmp")
            tmp.write_text(new)
            tmp.replace(path)
    twice = sorted({n for n in seen if seen.count(n) > 1})
    missing = sorted(set(BLOCKS) - set(seen))
    if twice or missing:
        raise KeyError(f"expected each generated block once in README.md and docs/, received "
                       f"{'twice: ' + ', '.join(twice) if twice else ''}{'; ' if twice and missing else ''}"
                       f"{'missing: ' + ', '.join(missing) if missing else ''}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block differs")
    parser.add_argument("--readme", type=Path, default=None, help="one document holding every block (default: "
                        "README.md and docs/*.md together)")
    args = parser.parse_args(argv)
    try:
        changed = update(args.check, [args.readme] if args.readme else None)
    except (KeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for name in changed:
            print(f"README block {name!r} differs from its record: run python benchmarks/readme.py")
        return 1 if changed else 0
    print(f"README and docs: {len(changed)} block(s) rewritten ({', '.join(changed) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
