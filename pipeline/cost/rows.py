"""The types every architecture's cost table shares: a row (Layer) and a published figure (Published).

Pure Python, imported by pipeline/cost/v1.py, v2.py and v3.py and by nothing they import.
"""
from __future__ import annotations

from dataclasses import dataclass

BN_PARAMS_PER_CHANNEL = 4  # gamma, beta (trainable), moving mean, moving variance (non-trainable)


def millions(value: float, decimals: int = 2) -> str:
    """A count in millions as the tables print it: 1,234,567 -> '1.23'."""
    return f"{value / 1e6:,.{decimals}f}"


@dataclass(frozen=True)
class Layer:
    """One row of the paper's Table 1, with its cost."""

    type: str  # "Conv", "Conv dw", "Conv 1x1", "Avg Pool", "FC", "Softmax"
    stride: int
    filter_shape: str  # as printed in Table 1: "3x3x3x32", "3x3x32 dw", "1x1x32x64", "Pool 7x7", "1024x1000"
    input: tuple[int, int, int]  # (height, width, channels)
    output: tuple[int, int, int]
    mult_adds: int
    params: int  # paper convention: weights only (no bias, no BatchNorm)
    keras_params: int  # as Keras counts them (with BatchNorm)
    keras_layer: str | None  # the Keras layer this row describes, where its name is fixed
    block: int | None = None  # V2/V3: the Keras block id of an inverted residual block's rows
    activation: str | None = None  # V2/V3: the nonlinearity after the layer ("NL" in the V3 paper's tables)

    @property
    def input_size(self) -> str:
        return "x".join(map(str, self.input))

    @property
    def output_size(self) -> str:
        return "x".join(map(str, self.output))

    def to_dict(self) -> dict:
        return {"type": self.type, "stride": self.stride, "filter_shape": self.filter_shape,
                "input_size": self.input_size, "output_size": self.output_size, "mult_adds": self.mult_adds,
                "params": self.params, "keras_params": self.keras_params, "keras_layer": self.keras_layer,
                **{k: v for k, v in (("block", self.block), ("activation", self.activation)) if v is not None}}


@dataclass(frozen=True)
class Published:
    """A figure printed in a paper or a release table, to set the computed totals against."""

    source: str
    mult_adds: float  # millions
    params: float  # millions
    remark: str = ""

    def to_dict(self, mult_adds: int, params: int) -> dict:
        return {"source": self.source, "mult_adds_m": self.mult_adds, "params_m": self.params,
                "mult_adds_diff_pct": _diff_pct(mult_adds, self.mult_adds),
                "params_diff_pct": _diff_pct(params, self.params), "remark": self.remark}


def _diff_pct(value: int, published_m: float) -> float:
    return 100 * (value / 1e6 / published_m - 1)


def published_rows(published: tuple[Published, ...], mult_adds: int, params: int, alpha: float,
                   resolution: int) -> list[str]:
    """Printed comparison of the totals with the published figures, with the difference in percent."""
    if not published:
        return [f"Published figures: none for alpha={alpha} at {resolution} px.", ""]
    rows = [f"Published figures for alpha={alpha}, {resolution} px (this table vs published):"]
    for p in published:
        rows.append(f"  {p.source:<44} Mult-Adds {p.mult_adds:g} M ({_diff_pct(mult_adds, p.mult_adds):+.1f} %), "
                    f"params {p.params:g} M ({_diff_pct(params, p.params):+.1f} %)"
                    + (f"  [{p.remark}]" if p.remark else ""))
    return rows + [""]
