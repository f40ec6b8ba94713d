"""The MobileNet family: one registry entry per architecture, the only place that knows their differences.

An entry (archs/entry.py's keyword-only `Arch`) carries what every stage needs: names, the alpha range, the
ImageNet weights Keras has, the input normalisation, its factory (a function returning the Keras model),
its cost function (pipeline/cost/) and its marker in the report's plots. A new family member is one module
here (and its cost module) plus one line in MEMBERS below: see docs/howto-add-architecture.md.

| arch      | paper                             | alpha (random / own weights) | ImageNet weights (Keras)                   | input        |
|-----------|-----------------------------------|------------------------------|--------------------------------------------|--------------|
| v1        | Howard et al. 2017, 1704.04861    | (0, 1]                       | 0.25 0.5 0.75 1.0 x 128 160 192 224         | [-1, 1]      |
| v2        | Sandler et al. 2018, 1801.04381   | (0, 1.4]                     | 0.35 0.5 0.75 1.0 1.3 1.4 x 96 .. 224       | [-1, 1]      |
| v3-small  | Howard et al. 2019, 1905.02244    | (0, 1]                       | 0.75 1.0, any side (trained at 224)        | 0..255 pixels|
| v3-large  | Howard et al. 2019, 1905.02244    | (0, 1]                       | 0.75 1.0, any side (trained at 224)        | 0..255 pixels|
| v4-conv-s | Qin et al. 2024, 2404.10518       | (0, 1]                       | none (Keras does not ship V4)              | [-1, 1]      |
| v4-conv-m | Qin et al. 2024, 2404.10518       | (0, 1]                       | none                                       | [-1, 1]      |

V1, V2 and V4 expect inputs scaled to [-1, 1] (mean = std = 127.5); Keras's V3 models carry a Rescaling layer
and take raw 0..255 pixels (mean 0, std 1). The preprocessing contract, the calibration range, the TFLite
metadata and `predict` all take the normalisation from here, so a V3 file is never fed [-1, 1] data.
"""
from __future__ import annotations

from mobilenet_edge.pipeline.archs import v1, v2, v3, v4
from mobilenet_edge.pipeline.archs.entry import Arch, alpha_text
from mobilenet_edge.pipeline.errors import PipelineError

__all__ = ["ARCHS", "Arch", "alpha_text", "arch_of_name", "get_arch"]

# One line per family member, in the order tables list them.
MEMBERS = (
    v1.V1,
    v2.V2,
    v3.V3_SMALL,
    v3.V3_LARGE,
    v4.V4_CONV_S,
    v4.V4_CONV_M,
)
ARCHS: dict[str, Arch] = {a.key: a for a in MEMBERS}


def get_arch(key: str) -> Arch:
    try:
        return ARCHS[key]
    except KeyError:
        raise PipelineError(f"expected ARCH to be one of {', '.join(ARCHS)}, received ARCH={key!r}") from None


def arch_of_name(name: str) -> Arch:
    """The architecture of a variant or checkpoint name (mobilenet_v2_1.00_64 -> v2)."""
    for arch in sorted(ARCHS.values(), key=lambda a: -len(a.prefix)):
        if name.startswith(arch.prefix + "_"):
            return arch
    raise PipelineError(f"expected a MobileNet variant name like mobilenet_v2_1.00_224, received {name!r}")


def arch_help() -> str:
    """The ARCH choices as help texts print them: 'v1 | v2 | ... (default v1)'."""
    return f"{' | '.join(ARCHS)} (default v1)"


def alpha_help() -> str:
    """Each architecture's alpha range as help texts print it: '(0, 1] for v1/v3-small/...; (0, 1.4] for v2'."""
    ranges: dict[float, list[str]] = {}
    for arch in MEMBERS:
        ranges.setdefault(arch.max_alpha, []).append(arch.key)
    return "; ".join(f"(0, {top:g}] for {'/'.join(keys)}" for top, keys in ranges.items())
