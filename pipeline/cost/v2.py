"""Stage 2 — cost of MobileNet V2, and the inverted residual block that V2 and V3 share.

Pure Python (no TensorFlow), like pipeline/cost/v1.py for V1: one row per conv of exactly the model that
`keras.applications.MobileNetV2(weights=None, include_top=True)` builds, with its Mult-Adds and parameters.
pipeline/cost/v3.py builds V3 from the same block (adding squeeze-and-excite) and the same report.

Keras rules reproduced here (keras/src/applications/mobilenet_v2.py, mobilenet_v3.py):

- channels are rounded by `make_divisible` (Keras's `_make_divisible` / `_depth`): to the nearest multiple
  of 8, at least 8, and never more than 10 % below the unrounded value;
- every stride-2 conv outputs ceil(side / 2): the first conv is 'same', and a stride-2 depthwise conv is
  ZeroPadding2D(correct_pad(x, k)) + 'valid', whose padding depends on the parity of the side (V1's fixed
  bottom/right padding gives floor(side / 2) instead);
- a block is [1x1 expansion] -> kxk depthwise -> [SE] -> 1x1 projection (linear), with BatchNorm after each
  conv and no bias; the residual Add (stride 1, same channels) has no weights.
"""
from __future__ import annotations

from dataclasses import dataclass

from mobilenet_edge.pipeline.cost.rows import BN_PARAMS_PER_CHANNEL, Layer, Published, millions, published_rows

# (output channels at alpha 1, stride, expansion) of the 17 inverted residual blocks (paper Table 2).
V2_BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6),
             (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6),
             (320, 1, 6))

# Published figures at 224 px, (alpha, RES) -> sources. The TF-slim release table (tensorflow/models,
# research/slim/nets/mobilenet/README.md) lists every released checkpoint; the tests check all 22 of its rows.
V2_PUBLISHED = {
    (1.0, 224): (Published("MobileNetV2 paper, Table 4", 300, 3.4),
                 Published("TF-slim checkpoint table", 300, 3.47)),
    (1.4, 224): (Published("MobileNetV2 paper, Table 4", 585, 6.9, "no count of this model gives 6.9 M"),
                 Published("TF-slim checkpoint table", 582, 6.06)),
}

V2_NOTES = (
    "params follow the papers: conv and fully connected weights, without biases or BatchNorm. At 1.0-224 that "
    "is 3.47 M (3,469,760), which the V2 paper prints as 3.4 M (cut to one decimal) and TF-slim's checkpoint "
    "table as 3.47 M; with this count all 22 rows of that table (alpha 0.35-1.4, 96-224 px) come out to the "
    "printed hundredth. Keras's count_params adds the classifier bias (1,000) and 4 BatchNorm values per channel "
    "(gamma, beta and the non-trainable moving mean and variance: 68,224): 3.54 M, 4.1 % above 3.4; its "
    "trainable count, 3.50 M, is 3.1 % above. So the published figure counts neither BatchNorm nor biases.",
    "The V2 paper's Table 4 lists 1.4-224 at 585 M Mult-Adds and 6.9 M parameters. The Mult-Adds agree "
    "(582.2 M; TF-slim prints 582); the 6.9 M matches no count of the model Keras and TF-slim build "
    "(6.06 M weights, 6.16 M count_params), and TF-slim's table prints 6.06 M.",
    "TF-slim's table prints Mult-Adds rounded down (0.35-96: 11.94 M printed as 11) and has 1001 classes.",
    "The classifier is a Dense layer (with bias); the last 1x1 conv has 1280 channels for alpha <= 1 and "
    "make_divisible(1280 * alpha) above; the first conv has make_divisible(32 * alpha).",
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Keras's `_make_divisible` (V2) and `_depth` (V3): the channel count Keras actually builds."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv(type_: str, kernel: int, stride: int, side: int, c_in: int, c_out: int, keras_layer: str | None, *,
         depthwise: bool = False, bias: bool = False, bn: bool = True, block: int | None = None,
         activation: str | None = None, fc: bool = False) -> Layer:
    """One conv row: Mult-Adds = weights x output pixels; keras_params adds the bias and BatchNorm."""
    out_side = side if stride == 1 else (side + 1) // 2  # 'same', or correct_pad + 'valid': ceil either way
    weights = kernel * kernel * c_in * (1 if depthwise else c_out)
    shape = (f"{c_in}x{c_out}" if fc else f"{kernel}x{kernel}x{c_in} dw" if depthwise
             else f"{kernel}x{kernel}x{c_in}x{c_out}")
    return Layer(type_, stride, shape, (side, side, c_in), (out_side, out_side, c_out), weights * out_side**2,
                 weights, weights + (c_out if bias else 0) + (BN_PARAMS_PER_CHANNEL * c_out if bn else 0),
                 keras_layer, block=block, activation=activation)


def inverted_residual(side: int, c_in: int, expanded: int | None, c_out: int, kernel: int, stride: int,
                      prefix: str, block: int, activation: str, se_channels: int | None = None) -> list[Layer]:
    """The rows of one block: [1x1 expansion] -> kxk depthwise -> [squeeze-and-excite] -> 1x1 projection.

    `expanded` None means no expansion conv (the first block); `se_channels` is the squeeze width of the
    SE block (V3), whose two 1x1 convs (with biases, no BatchNorm) run on the globally pooled vector.
    """
    rows, channels = [], c_in
    if expanded is not None:
        rows.append(conv("Expand 1x1", 1, 1, side, c_in, expanded, f"{prefix}expand", block=block,
                         activation=activation))
        channels = expanded
    rows.append(conv("Conv dw", kernel, stride, side, channels, channels, f"{prefix}depthwise", depthwise=True,
                     block=block, activation=activation))
    side = rows[-1].output[0]
    if se_channels is not None:
        rows += [conv("SE reduce", 1, 1, 1, channels, se_channels, f"{prefix}squeeze_excite_conv", bias=True,
                      bn=False, block=block, activation="relu"),
                 conv("SE expand", 1, 1, 1, se_channels, channels, f"{prefix}squeeze_excite_conv_1", bias=True,
                      bn=False, block=block, activation="h-sigmoid")]
    rows.append(conv("Project 1x1", 1, 1, side, channels, c_out, f"{prefix}project", block=block,
                     activation="linear"))
    return rows


def classifier_rows(side: int, channels: int, classes: int, hidden: tuple[int, str] | None = None,
                    dense: bool = True) -> list[Layer]:
    """Global average pool, [a hidden 1x1 conv on the pooled vector (V3)], the classifier and the softmax.

    V2's classifier is a Dense layer 'predictions' (softmax fused); V3's are the 1x1 convs 'conv_2' and
    'logits' (with biases, no BatchNorm), followed by the softmax Activation 'predictions'.
    """
    rows = [Layer("Avg Pool", 1, f"Pool {side}x{side}", (side, side, channels), (1, 1, channels), 0, 0, 0, None)]
    if hidden is not None:
        width, activation = hidden
        rows.append(conv("FC", 1, 1, 1, channels, width, "conv_2", bias=True, bn=False, activation=activation,
                         fc=True))
        channels = width
    rows += [conv("FC", 1, 1, 1, channels, classes, "predictions" if dense else "logits", bias=True, bn=False,
                  fc=True),
             Layer("Softmax", 1, "Classifier", (1, 1, classes), (1, 1, classes), 0, 0, 0,
                   None if dense else "predictions", activation="softmax")]
    return rows


def mobilenet_v2_layers(alpha: float, resolution: int, classes: int = 1000) -> list[Layer]:
    """One row per conv of keras.applications.MobileNetV2(alpha, input side `resolution`, `classes`)."""
    alpha = float(alpha)
    channels = make_divisible(32 * alpha)
    rows = [conv("Conv", 3, 2, resolution, 3, channels, "Conv1", activation="relu6")]
    side = rows[-1].output[0]
    for block, (base, stride, expansion) in enumerate(V2_BLOCKS):
        c_out = make_divisible(int(base * alpha))
        rows += inverted_residual(side, channels, expansion * channels if block else None, c_out, 3, stride,
                                  f"block_{block}_" if block else "expanded_conv_", block, "relu6")
        side, channels = rows[-1].output[0], c_out
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    rows.append(conv("Conv 1x1", 1, 1, side, channels, last, "Conv_1", activation="relu6"))
    return rows + classifier_rows(side, last, classes)


@dataclass(frozen=True)
class InvertedResidualCost:
    """The cost of one MobileNet V2 / V3 variant: per-layer rows, totals, shares, published figures."""

    arch: str
    title: str
    alpha: float
    resolution: int
    classes: int
    layers: tuple[Layer, ...]
    published: tuple[Published, ...]
    notes: tuple[str, ...]

    @property
    def total_mult_adds(self) -> int:
        return sum(layer.mult_adds for layer in self.layers)

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def keras_params(self) -> int:
        return sum(layer.keras_params for layer in self.layers)

    @property
    def keras_trainable_params(self) -> int:
        """count_params without BatchNorm's moving mean and variance (2 per BatchNorm channel)."""
        bn_channels = sum(layer.output[2] for layer in self.layers if layer.type in _BN_TYPES)
        return self.keras_params - BN_PARAMS_PER_CHANNEL // 2 * bn_channels

    @property
    def se_mult_adds(self) -> int:
        return sum(layer.mult_adds for layer in self.layers if layer.type.startswith("SE"))

    def shares(self) -> dict[str, tuple[float, float]]:
        """Share of Mult-Adds and of params per layer type, in percent (like the V1 paper's Table 2)."""
        groups: dict[str, list[Layer]] = {}
        for layer in self.layers:
            if layer.params:
                groups.setdefault("SE 1x1" if layer.type.startswith("SE") else layer.type, []).append(layer)
        return {group: (100 * sum(m.mult_adds for m in members) / self.total_mult_adds,
                        100 * sum(m.params for m in members) / self.total_params)
                for group, members in groups.items()}

    def to_dict(self) -> dict:
        return {"arch": self.arch, "alpha": self.alpha, "resolution": self.resolution, "classes": self.classes,
                "total_mult_adds": self.total_mult_adds, "total_params": self.total_params,
                "keras_params": self.keras_params, "keras_trainable_params": self.keras_trainable_params,
                "se_mult_adds": self.se_mult_adds, "layers": [layer.to_dict() for layer in self.layers],
                "shares": {g: {"mult_adds_pct": m, "params_pct": p} for g, (m, p) in self.shares().items()},
                "published": [p.to_dict(self.total_mult_adds, self.total_params) for p in self.published],
                "notes": list(self.notes)}

    def format(self) -> str:
        return format_inverted_table(self)


_BN_TYPES = ("Conv", "Expand 1x1", "Conv dw", "Project 1x1", "Conv 1x1")

COMMON_NOTES = (
    "Mult-Adds count the multiply-accumulates of every conv (first conv, 1x1 expansion, depthwise, "
    "squeeze-and-excite 1x1s, 1x1 projection, last 1x1 conv) and of the fully connected layers, as the papers "
    "do; BatchNorm, activations (ReLU6, ReLU, hard-swish, hard-sigmoid), the SE channel scaling, pooling, "
    "residual additions, bias additions and softmax are not counted. They are elementwise, a few operations "
    "per value, and the papers leave them out too.",
    "keras_params equals Keras's model.count_params() for the model with weights=None, include_top=True: "
    "params plus every bias and 4 BatchNorm values per channel; keras_trainable_params leaves out BatchNorm's "
    "non-trainable moving mean and variance.",
)


def cost_v2(alpha: float, resolution: int, classes: int = 1000) -> InvertedResidualCost:
    """The cost of MobileNet V2 at `alpha` and `resolution` with `classes` outputs (no weights needed)."""
    layers = mobilenet_v2_layers(alpha, resolution, classes)
    alpha = float(alpha)
    return InvertedResidualCost("v2", "MobileNet V2", alpha, resolution, classes, tuple(layers),
                                V2_PUBLISHED.get((alpha, resolution), ()), COMMON_NOTES + V2_NOTES)


def format_inverted_table(report: InvertedResidualCost) -> str:
    """Per-layer table, totals, shares per layer type, the published figures with % difference, notes."""
    r = report
    out = [f"{r.title} alpha={r.alpha}, {r.resolution}x{r.resolution} input, {r.classes} classes "
           "(per layer, as Keras builds it)", ""]
    header = (f"{'#':>3} {'blk':>3}  {'Type / Stride':<18} {'Filter Shape':<17} {'Input Size':<13} "
              f"{'NL':<9} {'Mult-Adds (M)':>13} {'Params':>11}")
    out += [header, "-" * len(header)]
    for i, layer in enumerate(r.layers, start=1):
        block = "" if layer.block is None else layer.block
        out.append(f"{i:>3} {block:>3}  {f'{layer.type} / s{layer.stride}':<18} {layer.filter_shape:<17} "
                   f"{layer.input_size:<13} {layer.activation or '':<9} {millions(layer.mult_adds):>13} "
                   f"{layer.params:>11,}")
    out += ["-" * len(header),
            f"{'':>8}{'Total':<60} {millions(r.total_mult_adds):>13} {r.total_params:>11,}", "",
            f"Mult-Adds: {millions(r.total_mult_adds, 1)} M  (multiply-accumulates per image"
            + (f"; {millions(r.se_mult_adds)} M of them in the SE 1x1 convs)" if r.se_mult_adds else ")"),
            f"Parameters: {millions(r.total_params)} M  (conv and FC weights, no bias or BatchNorm: the papers' count)",
            f"Keras count_params: {millions(r.keras_params)} M  (adds biases and 4 BatchNorm values per channel; "
            f"trainable: {millions(r.keras_trainable_params)} M)", "",
            "Resource per layer type", f"{'Type':<17} {'Mult-Adds':>10} {'Params':>9}"]
    out += [f"{group:<17} {m:>9.2f}% {p:>8.2f}%" for group, (m, p) in r.shares().items()]
    out += [""] + published_rows(r.published, r.total_mult_adds, r.total_params, r.alpha, r.resolution)
    out += ["Notes:"] + [f"- {note}" for note in r.notes]
    return "\n".join(out)
