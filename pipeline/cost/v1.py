"""Cost of MobileNet V1: the paper's Table 1 with Mult-Adds and parameters per layer, for any alpha and RES.

The entry point for the whole family is `cost_table` in pipeline/cost/table.py, which checks the inputs
and dispatches through the Arch registry (pipeline/archs/) to `cost_v1` here, `cost_v2` (V2, with the
inverted residual block V3 shares) or `cost_v3`.

Pure Python (no TensorFlow): the table is derived from the architecture, so it needs no weights and can
run anywhere. Channel counts and spatial sizes follow `keras.applications.MobileNet` exactly, so that
the figures describe the model the pipeline actually builds and converts:

- channels are `int(c * alpha)` (truncated, as Keras does for the first conv and every pointwise conv);
- the first conv is 'same' with stride 2, so its output side is ceil(side / 2);
- a stride-2 depthwise conv is ZeroPadding2D(((0, 1), (0, 1))) followed by a 'valid' 3x3 conv, so its
  output side is floor((side + 1 - 3) / 2) + 1 = floor(side / 2) — one less than ceil for odd sides.

Besides the per-layer table it gives the shares per layer type (paper Table 2) and the same network with
standard 3x3 convolutions in place of each depthwise + pointwise pair (paper Section 3 and Table 4).
"""
from __future__ import annotations

from dataclasses import dataclass

from mobilenet_edge.pipeline.cost.rows import BN_PARAMS_PER_CHANNEL, Layer, Published, millions, published_rows
from mobilenet_edge.pipeline.errors import PipelineError

KERNEL = 3  # Dk: every spatial filter in MobileNet V1 is 3x3
FIRST_CONV_CHANNELS = 32
# (output channels at alpha 1, stride of the depthwise conv) for the 13 separable blocks of Table 1.
# The paper's Table 1 prints the 13th depthwise conv as "s2" on a 7x7 input; its own output size (7x7)
# and every implementation use stride 1.
SEPARABLE_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

# Paper Table 2 (alpha 1.0, 224 px): share of Mult-Adds and of parameters, in percent.
PAPER_SHARES = {"Conv 1x1": (94.86, 74.59), "Conv DW": (3.06, 1.06),
                "Conv 3x3": (1.19, 0.02), "Fully Connected": (0.18, 24.33)}
SHARE_GROUP = {"Conv 1x1": "Conv 1x1", "Conv dw": "Conv DW", "Conv": "Conv 3x3", "FC": "Fully Connected"}
# Paper Table 6 (width multiplier) and Table 7 (resolution): (alpha, RES) -> (M Mult-Adds, M params[, remark]).
PAPER_VARIANTS = {(1.0, 224): (569, 4.2), (0.75, 224): (325, 2.6), (0.5, 224): (149, 1.3),
                  (0.25, 224): (41, 0.5, "0.46 M, printed to 0.1 M"),
                  (1.0, 192): (418, 4.2), (1.0, 160): (290, 4.2), (1.0, 128): (186, 4.2)}

NOTES = (
    "Mult-Adds count the multiply-accumulates of the conv, depthwise, pointwise and fully connected layers "
    "only, as the paper does; BatchNorm, ReLU6, pooling, bias additions and softmax are not counted.",
    "params follow the paper: conv, depthwise, pointwise and fully connected weights, without biases or "
    "BatchNorm. With this count the paper's Table 2 parameter shares come out to the hundredth "
    "(74.59 % / 24.33 % at 1.0-224); counting the FC bias too gives 74.57 % / 24.35 %.",
    "The paper's Table 2 prints 1.19 % of Mult-Adds for the first 3x3 conv: the digits are swapped. "
    "112*112*3*3*3*32 = 10.84 M of 568.7 M is 1.91 %, and the paper's own column sums to 99.29 % with 1.19 "
    "but to 100.01 % with 1.91.",
    "keras_params is what Keras's model.count_params() reports for keras.applications.MobileNet(weights=None): "
    "the paper's params plus 4 BatchNorm values per channel (gamma, beta and the non-trainable moving mean and "
    "variance) and the bias of the FC layer (Keras's 1x1 conv 'conv_preds').",
    "Channels are int(c * alpha), truncated as Keras builds them.",
    "Spatial sizes follow Keras: the first conv ('same', stride 2) gives ceil(side / 2); a stride-2 depthwise "
    "conv (zero padding bottom/right, then 'valid') gives floor(side / 2), so odd sides lose one pixel "
    "compared with 'same' padding (e.g. 33 -> 17 -> 8).",
    "The paper's Table 1 prints the last depthwise conv as s2 on a 7x7x1024 input; it is stride 1 (its output "
    "is 7x7 in the paper too, and in Keras).",
    "standard_conv replaces every depthwise + pointwise pair by one 3x3 conv with the same stride and channels; "
    "the first conv, the pooling and the FC layer stay. Per pair the ratio is 1/N + 1/Dk^2 exactly (both are "
    "counted at the output side); the whole-network ratio also carries the first conv and the FC layer.",
)


@dataclass(frozen=True)
class Share:
    """One row of the paper's Table 2: a layer type's share of Mult-Adds and parameters, in percent."""

    group: str
    mult_adds_pct: float
    params_pct: float
    paper_mult_adds_pct: float  # the paper's figure at alpha 1.0, 224 px, for comparison
    paper_params_pct: float


@dataclass(frozen=True)
class SeparableSaving:
    """One depthwise + pointwise pair against the standard 3x3 conv it replaces (paper eq. 2, 4, 5)."""

    block: int
    in_channels: int  # M
    out_channels: int  # N
    output_side: int  # D_F
    separable_mult_adds: int
    standard_mult_adds: int
    separable_params: int
    standard_params: int

    @property
    def ratio(self) -> float:
        return self.separable_mult_adds / self.standard_mult_adds

    @property
    def theory(self) -> float:
        return 1 / self.out_channels + 1 / KERNEL**2


@dataclass(frozen=True)
class StandardConvComparison:
    """The same network with standard 3x3 convolutions ("Conv MobileNet", paper Table 4)."""

    blocks: tuple[SeparableSaving, ...]
    total_mult_adds: int
    total_params: int
    mobilenet_mult_adds: int
    mobilenet_params: int

    @property
    def ratio(self) -> float:
        """MobileNet's Mult-Adds as a fraction of the standard-conv network's (whole network)."""
        return self.mobilenet_mult_adds / self.total_mult_adds

    @property
    def params_ratio(self) -> float:
        return self.mobilenet_params / self.total_params

    @property
    def separable_ratio(self) -> float:
        """Over the separable pairs only: sum of separable / sum of standard Mult-Adds."""
        return sum(b.separable_mult_adds for b in self.blocks) / sum(b.standard_mult_adds for b in self.blocks)

    @property
    def theory(self) -> float:
        """1/N + 1/Dk^2 averaged over the pairs, weighted by each pair's standard-conv Mult-Adds."""
        weights = [b.standard_mult_adds for b in self.blocks]
        return sum(b.theory * w for b, w in zip(self.blocks, weights)) / sum(weights)

    def to_dict(self) -> dict:
        return {"total_mult_adds": self.total_mult_adds, "total_params": self.total_params,
                "ratio": self.ratio, "saving": 1 / self.ratio, "params_ratio": self.params_ratio,
                "separable_ratio": self.separable_ratio, "theory": self.theory,
                "blocks": [{"block": b.block, "in_channels": b.in_channels, "out_channels": b.out_channels,
                            "output_side": b.output_side, "separable_mult_adds": b.separable_mult_adds,
                            "standard_mult_adds": b.standard_mult_adds, "separable_params": b.separable_params,
                            "standard_params": b.standard_params, "ratio": b.ratio, "theory": b.theory}
                           for b in self.blocks]}


@dataclass(frozen=True)
class CostReport:
    """The cost of one MobileNet V1 variant: per-layer table, totals, Table 2 shares, standard-conv comparison."""

    alpha: float
    resolution: int
    classes: int
    layers: tuple[Layer, ...]
    total_mult_adds: int
    total_params: int
    keras_params: int
    shares: tuple[Share, ...]
    standard_conv: StandardConvComparison
    notes: tuple[str, ...] = NOTES
    arch = "v1"

    @property
    def published(self) -> tuple[Published, ...]:
        figures = PAPER_VARIANTS.get((self.alpha, self.resolution))
        return (Published("MobileNet paper, Table 6/7", *figures),) if figures else ()

    def to_dict(self) -> dict:
        return {"arch": self.arch, "alpha": self.alpha, "resolution": self.resolution, "classes": self.classes,
                "total_mult_adds": self.total_mult_adds, "total_params": self.total_params,
                "keras_params": self.keras_params, "layers": [layer.to_dict() for layer in self.layers],
                "shares": {s.group: {"mult_adds_pct": s.mult_adds_pct, "params_pct": s.params_pct,
                                     "paper_mult_adds_pct": s.paper_mult_adds_pct,
                                     "paper_params_pct": s.paper_params_pct} for s in self.shares},
                "standard_conv": self.standard_conv.to_dict(),
                "published": [p.to_dict(self.total_mult_adds, self.total_params) for p in self.published],
                "notes": list(self.notes)}

    def format(self) -> str:
        return format_v1_table(self)


def _check(alpha: float) -> float:
    """V1's own limit (the registry's range check comes first, in pipeline/cost/table.py)."""
    alpha = float(alpha)
    if int(FIRST_CONV_CHANNELS * alpha) < 1:
        raise PipelineError(f"expected alpha >= 1/{FIRST_CONV_CHANNELS} so that every layer keeps a channel, "
                            f"received alpha={alpha!r}")
    return alpha


def _stride2_depthwise_side(side: int) -> int:
    """Keras pads one row/column at the bottom/right, then runs a 'valid' 3x3 conv with stride 2."""
    return (side + 1 - KERNEL) // 2 + 1


def mobilenet_v1_layers(alpha: float, resolution: int, classes: int = 1000) -> list[Layer]:
    """The rows of the paper's Table 1 for width multiplier `alpha` and a `resolution` x `resolution` input.

    Returns one `Layer` per row (first conv, 13 depthwise + pointwise pairs, average pool, FC, softmax),
    with Mult-Adds and parameters in the paper's convention and as Keras counts them.
    """
    alpha = _check(alpha)
    channels = int(FIRST_CONV_CHANNELS * alpha)
    side = (resolution + 1) // 2  # 'same' padding, stride 2
    rows = [Layer("Conv", 2, f"{KERNEL}x{KERNEL}x3x{channels}", (resolution, resolution, 3),
                  (side, side, channels), KERNEL**2 * 3 * channels * side**2, KERNEL**2 * 3 * channels,
                  KERNEL**2 * 3 * channels + BN_PARAMS_PER_CHANNEL * channels, "conv1")]
    for block, (base, stride) in enumerate(SEPARABLE_BLOCKS, start=1):
        in_side, m, n = side, channels, int(base * alpha)
        side = in_side if stride == 1 else _stride2_depthwise_side(in_side)
        rows.append(Layer("Conv dw", stride, f"{KERNEL}x{KERNEL}x{m} dw", (in_side, in_side, m), (side, side, m),
                          KERNEL**2 * m * side**2, KERNEL**2 * m, (KERNEL**2 + BN_PARAMS_PER_CHANNEL) * m,
                          f"conv_dw_{block}"))
        rows.append(Layer("Conv 1x1", 1, f"1x1x{m}x{n}", (side, side, m), (side, side, n), m * n * side**2,
                          m * n, m * n + BN_PARAMS_PER_CHANNEL * n, f"conv_pw_{block}"))
        channels = n
    fc = channels * classes
    rows += [Layer("Avg Pool", 1, f"Pool {side}x{side}", (side, side, channels), (1, 1, channels), 0, 0, 0, None),
             # Keras's FC is the 1x1 conv 'conv_preds', with a bias
             Layer("FC", 1, f"{channels}x{classes}", (1, 1, channels), (1, 1, classes), fc, fc, fc + classes,
                   "conv_preds"),
             Layer("Softmax", 1, "Classifier", (1, 1, classes), (1, 1, classes), 0, 0, 0, "predictions")]
    return rows


def _shares(layers: list[Layer]) -> tuple[Share, ...]:
    total_ma = sum(layer.mult_adds for layer in layers)
    total_p = sum(layer.params for layer in layers)
    shares = []
    for group, (paper_ma, paper_p) in PAPER_SHARES.items():
        members = [layer for layer in layers if SHARE_GROUP.get(layer.type) == group]
        shares.append(Share(group, 100 * sum(m.mult_adds for m in members) / total_ma,
                            100 * sum(m.params for m in members) / total_p, paper_ma, paper_p))
    return tuple(shares)


def _standard_conv(layers: list[Layer]) -> StandardConvComparison:
    pairs = [(dw, pw) for dw, pw in zip(layers, layers[1:]) if dw.type == "Conv dw" and pw.type == "Conv 1x1"]
    blocks = []
    for block, (dw, pw) in enumerate(pairs, start=1):
        m, (side, _, n) = dw.input[2], pw.output
        blocks.append(SeparableSaving(block, m, n, side, dw.mult_adds + pw.mult_adds,
                                      KERNEL**2 * m * n * side**2, dw.params + pw.params, KERNEL**2 * m * n))
    kept = [layer for layer in layers if layer.type not in ("Conv dw", "Conv 1x1")]
    return StandardConvComparison(
        tuple(blocks),
        sum(layer.mult_adds for layer in kept) + sum(b.standard_mult_adds for b in blocks),
        sum(layer.params for layer in kept) + sum(b.standard_params for b in blocks),
        sum(layer.mult_adds for layer in layers), sum(layer.params for layer in layers))


def cost_v1(alpha: float, resolution: int, classes: int = 1000) -> CostReport:
    """The cost of MobileNet V1 at `alpha` and `resolution` with `classes` outputs (no weights needed)."""
    layers = mobilenet_v1_layers(alpha, resolution, classes)
    return CostReport(alpha=_check(alpha), resolution=resolution, classes=classes,
                      layers=tuple(layers), total_mult_adds=sum(layer.mult_adds for layer in layers),
                      total_params=sum(layer.params for layer in layers),
                      keras_params=sum(layer.keras_params for layer in layers),
                      shares=_shares(layers), standard_conv=_standard_conv(layers))


def format_v1_table(report: CostReport) -> str:
    """The paper's Table 1 with costs, Table 2 (shares), the standard-conv comparison, the notes."""
    r = report
    out = [f"MobileNet V1 alpha={r.alpha}, {r.resolution}x{r.resolution} input, {r.classes} classes "
           "(paper Table 1, with costs)", ""]
    header = f"{'#':>3}  {'Type / Stride':<16} {'Filter Shape':<16} {'Input Size':<14} {'Mult-Adds (M)':>13} {'Params':>11}"
    out += [header, "-" * len(header)]
    for i, layer in enumerate(r.layers, start=1):
        out.append(f"{i:>3}  {f'{layer.type} / s{layer.stride}':<16} {layer.filter_shape:<16} "
                   f"{layer.input_size:<14} {millions(layer.mult_adds):>13} {layer.params:>11,}")
    out += ["-" * len(header),
            f"{'':>3}  {'Total':<48} {millions(r.total_mult_adds):>13} {r.total_params:>11,}", "",
            f"Mult-Adds: {millions(r.total_mult_adds, 1)} M  (multiply-accumulates per image; the paper's measure of compute)",
            f"Parameters: {millions(r.total_params)} M  (weights only, no bias or BatchNorm: the paper's count)",
            f"Keras count_params: {millions(r.keras_params)} M  (adds the FC bias and 4 BatchNorm values per channel)", ""]
    out += published_rows(r.published, r.total_mult_adds, r.total_params, r.alpha, r.resolution)

    out += ["Resource per layer type (paper Table 2)",
            f"{'Type':<17} {'Mult-Adds':>10} {'Params':>9}   {'paper 1.0-224':>20}"]
    for s in r.shares:
        out.append(f"{s.group:<17} {s.mult_adds_pct:>9.2f}% {s.params_pct:>8.2f}%   "
                   f"{s.paper_mult_adds_pct:>9.2f}% {s.paper_params_pct:>8.2f}%"
                   + ("  (paper's digits swapped: 1.91, see notes)" if s.group == "Conv 3x3" else ""))
    out.append("")

    sc = r.standard_conv
    out += ["Depthwise separable vs standard 3x3 convolutions (paper Section 3 and Table 4)",
            f"{'block':>5} {'M':>5} {'N':>5} {'side':>5} {'separable (M)':>14} {'standard (M)':>13} "
            f"{'measured':>9} {'1/N+1/Dk^2':>11}"]
    for b in sc.blocks:
        out.append(f"{b.block:>5} {b.in_channels:>5} {b.out_channels:>5} {b.output_side:>5} "
                   f"{millions(b.separable_mult_adds):>14} {millions(b.standard_mult_adds):>13} {b.ratio:>9.4f} {b.theory:>11.4f}")
    out += [f"separable pairs: {sc.separable_ratio:.4f} of the standard Mult-Adds "
            f"(1/N + 1/Dk^2 weighted by cost: {sc.theory:.4f})",
            f"whole network: {millions(r.total_mult_adds, 1)} M vs {millions(sc.total_mult_adds, 1)} M Mult-Adds "
            f"-> {sc.ratio:.4f}, {1 / sc.ratio:.1f}x fewer; "
            f"{millions(r.total_params)} M vs {millions(sc.total_params)} M params -> {1 / sc.params_ratio:.1f}x fewer",
            "(measured = separable / standard Mult-Adds of the layer; the paper expects 8-9x fewer with 3x3 kernels)",
            "", "Notes:"]
    out += [f"- {note}" for note in r.notes]
    return "\n".join(out)
