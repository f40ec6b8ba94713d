"""Stage 2 — cost of MobileNet V4 Conv-S and Conv-M, as pipeline/archs/v4.py builds them.

Pure Python (no TensorFlow). The block tables below are the paper's architecture tables (Qin et al. 2024,
arXiv 2404.10518, the MNv4-Conv-S and MNv4-Conv-M tables of its appendix); pipeline/archs/v4.py builds its
Keras model from these same tables, so the cost rows and the model's layers cannot drift apart.

A V4 network is a stem conv, a few plain or fused convs, then Universal Inverted Bottleneck (UIB) blocks:
[kxk depthwise "start"] -> 1x1 expansion -> [kxk depthwise "middle"] -> 1x1 projection, each conv followed by
BatchNorm, ReLU after the expansion and the middle depthwise only. Which depthwise convs a block has names it:
ExtraDW (both), IB (middle only: V2's inverted residual), ConvNext-like (start only) and FFN (neither).
The table's rows name them as the paper's tables do: dw1 (its "DW K1", the start one), exp, dw2 ("DW K2"), proj.
The stride sits on the middle depthwise when there is one, else on the start one. Then a 1x1 conv to 960
channels, global average pooling, a 1x1 conv to 1280 on the pooled vector (BatchNorm, ReLU) and the
classifier.

Width alpha scales every block's channels (make_divisible(c * alpha), multiples of 8); the stem (32) and the
1280-wide hidden layer stay as they are, as V3's do; expansion channels are make_divisible(c_in * ratio).
"""
from __future__ import annotations

from dataclasses import dataclass

from mobilenet_edge.pipeline.cost.rows import BN_PARAMS_PER_CHANNEL, Layer, Published
from mobilenet_edge.pipeline.cost.v2 import COMMON_NOTES, InvertedResidualCost, conv, make_divisible

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

# Block kinds: ("conv", kernel, stride, out) a conv + BatchNorm + ReLU; ("fused", kernel, stride, ratio, out)
# a kxk conv expanding to c_in * ratio (ReLU) then a 1x1 projection (FusedIB); ("uib", start kernel,
# middle kernel, stride, ratio, out), a kernel of 0 meaning no such depthwise conv.
V4_CONV_S_BLOCKS = (
    ("conv", 3, 2, 32), ("conv", 1, 1, 32),
    ("conv", 3, 2, 96), ("conv", 1, 1, 64),
    ("uib", 5, 5, 2, 3.0, 96),
    *[("uib", 0, 3, 1, 2.0, 96)] * 4,
    ("uib", 3, 0, 1, 4.0, 96),
    ("uib", 3, 3, 2, 6.0, 128), ("uib", 5, 5, 1, 4.0, 128), ("uib", 0, 5, 1, 4.0, 128),
    ("uib", 0, 5, 1, 3.0, 128), ("uib", 0, 3, 1, 4.0, 128), ("uib", 0, 3, 1, 4.0, 128),
    ("conv", 1, 1, 960),
)
V4_CONV_M_BLOCKS = (
    ("fused", 3, 2, 4.0, 48),
    ("uib", 3, 5, 2, 4.0, 80), ("uib", 3, 3, 1, 2.0, 80),
    ("uib", 3, 5, 2, 6.0, 160), ("uib", 3, 3, 1, 4.0, 160), ("uib", 3, 3, 1, 4.0, 160),
    ("uib", 3, 5, 1, 4.0, 160), ("uib", 3, 3, 1, 4.0, 160), ("uib", 3, 0, 1, 4.0, 160),
    ("uib", 0, 0, 1, 2.0, 160), ("uib", 3, 0, 1, 4.0, 160),
    ("uib", 5, 5, 2, 6.0, 256), ("uib", 5, 5, 1, 4.0, 256), ("uib", 3, 5, 1, 4.0, 256),
    ("uib", 3, 5, 1, 4.0, 256), ("uib", 0, 0, 1, 4.0, 256), ("uib", 3, 0, 1, 4.0, 256),
    ("uib", 3, 5, 1, 2.0, 256), ("uib", 5, 5, 1, 4.0, 256), ("uib", 0, 0, 1, 4.0, 256),
    ("uib", 0, 0, 1, 4.0, 256), ("uib", 5, 0, 1, 2.0, 256),
    ("conv", 1, 1, 960),
)
V4 = {"v4-conv-s": ("MobileNet V4 Conv-S", V4_CONV_S_BLOCKS),
      "v4-conv-m": ("MobileNet V4 Conv-M", V4_CONV_M_BLOCKS)}

PAPER = "MobileNetV4 paper, Table 5"
# The paper prints Conv-S at 224 px and Conv-M at 256 px (its Table 5 lists each at the side it was trained at).
V4_PUBLISHED = {
    ("v4-conv-s", 1.0, 224): (Published(PAPER, 200, 3.8, "printed as 0.2 G"),),
    ("v4-conv-m", 1.0, 256): (Published(PAPER, 1000, 9.2, "printed as 1.0 G, at 256 px"),),
}

V4_NOTES = (
    "params follow the papers: conv and fully connected weights, without biases or BatchNorm, as for V1-V3.",
    "The paper prints V4's Mult-Adds to one significant figure (0.2 G, 1.0 G) and its parameters to one "
    "decimal (3.8 M, 9.2 M); Conv-M's figures are at 256 px, the side the paper trains and evaluates it at. "
    "Its 224 px cost is about 0.77 of that.",
    "ReLU, BatchNorm, residual additions and pooling are not counted (elementwise), as in the papers.",
)


def block_kind(start: int, middle: int) -> str:
    """The paper's name of a UIB instance from its two optional depthwise kernels (0: absent)."""
    return {(True, True): "ExtraDW", (False, True): "IB", (True, False): "ConvNext", (False, False): "FFN"}[
        (start > 0, middle > 0)]


def mobilenet_v4_layers(arch: str, alpha: float, resolution: int, classes: int = 1000) -> list[Layer]:
    """One row per conv of the Keras V4 model of pipeline/archs/v4.py (same layer names)."""
    alpha = float(alpha)
    rows = [conv("Conv", 3, 2, resolution, 3, STEM_CHANNELS, "stem_conv", activation="relu")]
    side, channels = rows[-1].output[0], STEM_CHANNELS
    for block, spec in enumerate(V4[arch][1]):
        p = f"block{block}_"
        if spec[0] == "conv":
            _, kernel, stride, out = spec
            c_out = make_divisible(out * alpha)
            rows.append(conv("Conv" if kernel > 1 else "Conv 1x1", kernel, stride, side, channels, c_out,
                             f"{p}conv", block=block, activation="relu"))
        elif spec[0] == "fused":
            _, kernel, stride, ratio, out = spec
            expanded, c_out = make_divisible(channels * ratio), make_divisible(out * alpha)
            rows += [conv("FusedIB conv", kernel, stride, side, channels, expanded, f"{p}fused", block=block,
                          activation="relu")]
            rows.append(conv("Project 1x1", 1, 1, rows[-1].output[0], expanded, c_out, f"{p}project",
                             block=block, activation="linear"))
        else:
            _, start, middle, stride, ratio, out = spec
            expanded, c_out = make_divisible(channels * ratio), make_divisible(out * alpha)
            kind = block_kind(start, middle)
            if start:
                rows.append(conv(f"{kind} dw1", start, 1 if middle else stride, side, channels, channels,
                                 f"{p}dw_start", depthwise=True, block=block, activation="linear"))
            rows.append(conv(f"{kind} exp", 1, 1, rows[-1].output[0], channels, expanded, f"{p}expand",
                             block=block, activation="relu"))
            if middle:
                rows.append(conv(f"{kind} dw2", middle, stride, rows[-1].output[0], expanded, expanded,
                                 f"{p}dw_mid", depthwise=True, block=block, activation="relu"))
            rows.append(conv(f"{kind} proj", 1, 1, rows[-1].output[0], expanded, c_out, f"{p}project",
                             block=block, activation="linear"))
        side, channels = rows[-1].output[0], rows[-1].output[2]
    hidden = make_divisible(HEAD_CHANNELS * alpha) if alpha > 1.0 else HEAD_CHANNELS
    return rows + [
        Layer("Avg Pool", 1, f"Pool {side}x{side}", (side, side, channels), (1, 1, channels), 0, 0, 0, None),
        conv("FC", 1, 1, 1, channels, hidden, "head_conv", activation="relu", fc=True),
        conv("FC", 1, 1, 1, hidden, classes, "predictions", bias=True, bn=False, fc=True),
        Layer("Softmax", 1, "Classifier", (1, 1, classes), (1, 1, classes), 0, 0, 0, None, activation="softmax"),
    ]


@dataclass(frozen=True)
class V4Cost(InvertedResidualCost):
    """V2/V3's report; its rows are named for the UIB kinds, so BatchNorm is found per row, not by row type."""

    @property
    def keras_trainable_params(self) -> int:
        bn_channels = sum(layer.output[2] for layer in self.layers
                          if layer.keras_params - layer.params == BN_PARAMS_PER_CHANNEL * layer.output[2])
        return self.keras_params - BN_PARAMS_PER_CHANNEL // 2 * bn_channels


def cost_v4(arch: str, alpha: float, resolution: int, classes: int = 1000) -> V4Cost:
    """The cost of MobileNet V4 Conv-S or Conv-M at `alpha` and `resolution` with `classes` outputs."""
    layers = mobilenet_v4_layers(arch, alpha, resolution, classes)
    alpha = float(alpha)
    return V4Cost(arch, V4[arch][0], alpha, resolution, classes, tuple(layers),
                                V4_PUBLISHED.get((arch, alpha, resolution), ()), COMMON_NOTES + V4_NOTES)
