"""The format registry: every file the export can write, as a record of container x precision.

A format is what one `--formats` name makes: TFLite fp32, fp16, dynamic-range, int8; ONNX fp32 and QDQ int8.
Its record (`Format`) holds its canonical key (`tflite-int8`), the names it answered to before the registry
(`int8`: still the name on the command line, in make and in every record: sweep keys, sweep.json), its container
(the file suffix, which says which runtimes of benchmarks/runtimes/ run it), its precision (the manifest entry's
`precision`, and which gate of `Gates.rule` validates it), whether its file depends on the calibration samples,
its converter and its sweep settings. Manifest entries keep `format` (the container) and `precision`: old
manifests read the same (`of_entry`).

Adding a format: write `pipeline/formats/<container>.py` (or add a record to the container's module) with a
`FORMATS` tuple of `Format` records, and add the module's name to `MEMBERS`. The converter is a function
`convert(ctx) -> None` that writes the file(s) and hands each `Artifact` to `ctx.add` (see `ConvertContext`).
Converters are imported only when they run, so this module stays a leaf that config.py can import.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mobilenet_edge.benchmarks import runtimes as runtime_registry
from mobilenet_edge.pipeline.errors import PipelineError

MEMBERS = ("tflite", "onnx")  # modules of this package, in the order formats convert (and are listed)


@dataclass(frozen=True)
class Format:
    """One kind of artifact file: container x precision."""

    key: str  # canonical: "<container>-<precision>", e.g. "tflite-int8"
    container: str  # the file suffix without its dot; the runtimes of benchmarks/runtimes/ say which run it
    precision: str  # the manifest entry's `precision`: fp32 | fp16 | dynamic | int8
    convert: Callable  # convert(ctx: ConvertContext) -> None: writes the file(s), hands each Artifact to ctx.add
    aliases: tuple[str, ...] = ()  # earlier names; aliases[0] is the name records use (CLI, make, sweep keys)
    calibrated: bool = False  # the file depends on the calibration samples (int8): its manifest entry names them
    uses_samples: bool = False  # needs calibration samples at all (calibrated, or checked against a few of them)
    gate: str = ""  # the Gates.rule the validation applies ("" : the precision's)
    settings: Callable = field(default=lambda quant, opset: {})  # (QuantConfig, opset) -> what the file depends on

    @property
    def name(self) -> str:
        """The name records and the command line use: today's short name where there is one."""
        return self.aliases[0] if self.aliases else self.key

    @property
    def suffix(self) -> str:
        return f".{self.container}"

    @property
    def gate_rule(self) -> str:
        return self.gate or self.precision

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Every runner name of benchmarks/runtimes/ that runs this format's container."""
        return tuple(n for n in runtime_registry.names() if runtime_registry.container_of(n) == self.container)

    def file_name(self, variant_name: str) -> str:
        """The file this format writes for a variant: mobilenet_0.75_224_int8.tflite."""
        return f"{variant_name}_{self.precision}{self.suffix}"

    def audit(self, path: Path) -> dict:
        """The fast-path audit of one of this format's files on this machine (pipeline/convert/fastpath.py)."""
        from mobilenet_edge.pipeline.convert.fastpath import audit

        return audit(path).to_dict()


@dataclass
class ConvertContext:
    """What a converter gets: the Keras model, the recipe, the calibration set, metadata writers, the folder."""

    model: object
    cfg: object  # RecipeConfig
    task: object  # calibration.tasks.Task
    folder: Path
    calib: object  # CalibrationSet | None
    add: Callable  # add(artifact): lists the file (the recipe writes its manifest entry then)
    add_metadata: Callable | None = None  # TFLite metadata naming the calibration set (int8 files)
    float_metadata: Callable | None = None  # TFLite metadata of float files
    budget: object = None  # BUDGET's search result (pipeline/budget/), or None
    onnx_metadata: dict | None = None  # ONNX metadata_props (preprocessing, labels)


def all_formats() -> tuple[Format, ...]:
    """Every format, member by member, in conversion order."""
    return tuple(f for m in MEMBERS for f in importlib.import_module(f".{m}", __name__).FORMATS)


def names() -> tuple[str, ...]:
    """Every format's record name (fp32, fp16, dynamic, int8, onnx, onnx-int8, ...), in conversion order."""
    return tuple(f.name for f in all_formats())


def get(name: str) -> Format:
    """The format a name, key or alias names ("int8", "tflite-int8"); PipelineError otherwise."""
    for f in all_formats():
        if name == f.key or name in f.aliases:
            return f
    raise PipelineError(f"expected a format among {', '.join(names())} (or {', '.join(f.key for f in all_formats())}), "
                        f"received {name!r}")


def known(name: str) -> bool:
    return any(name == f.key or name in f.aliases for f in all_formats())


def canonical_names(requested, what: str = "formats", sep: str = ", ") -> tuple[str, ...]:
    """`requested` names, keys or aliases, as record names in their order (the first of duplicates); PipelineError
    naming every unknown one, or none requested."""
    requested = tuple(requested)
    bad = [r for r in requested if not known(r)]
    if bad or not requested:
        raise PipelineError(f"expected {what} among {sep.join(names())}, received {sep.join(bad) or 'none'}")
    return tuple(dict.fromkeys(get(r).name for r in requested))


def of_entry(entry: dict) -> Format | None:
    """The format of a manifest entry, by its `format` (container) and `precision`; None for an unknown one."""
    for f in all_formats():
        if f.container == entry.get("format") and f.precision == entry.get("precision"):
            return f
    return None


def calibrated_names() -> frozenset[str]:
    return frozenset(f.name for f in all_formats() if f.calibrated)


def needs_samples(requested) -> bool:
    """Whether any of the formats (record names) needs calibration samples."""
    return any(get(name).uses_samples for name in requested)


def containers() -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.container for f in all_formats()))
