"""Stage 2 — cost of MobileNet V3-Small and V3-Large, as keras.applications builds them.

Pure Python (no TensorFlow). V3 is V2's inverted residual block (pipeline/cost/v2.py) with 5x5 depthwise
convs in places, squeeze-and-excite (SE) in some blocks and hard-swish in the later ones, found by
architecture search, and a lighter head. The tables below are those of keras/src/applications/mobilenet_v3.py
(weights=None, include_top=True, minimalistic=False), which follow the final version of the paper's
Tables 1 and 2:

- the first conv has 16 channels at every alpha (Keras does not scale it); block channels are
  make_divisible(c * alpha), expansion channels make_divisible(in_channels * expansion ratio);
- an SE block pools the depthwise output to one vector and runs two 1x1 convs with biases on it:
  down to make_divisible(expanded / 4) channels (ReLU), back up to `expanded` (hard-sigmoid);
- the head is a 1x1 conv to 6x the last block's channels (with BatchNorm), global average pooling, a 1x1
  conv with bias and no BatchNorm to 1280 (Large) / 1024 (Small) channels, scaled only for alpha > 1, and
  the classifier as a 1x1 conv with bias ('logits').
"""
from __future__ import annotations

from mobilenet_edge.pipeline.cost.rows import Layer, Published
from mobilenet_edge.pipeline.cost.v2 import COMMON_NOTES, InvertedResidualCost, classifier_rows, conv, inverted_residual, \
    make_divisible
from mobilenet_edge.pipeline.errors import PipelineError

SE_RATIO = 0.25
# (expansion ratio, output channels at alpha 1, kernel, stride, squeeze-and-excite, activation) per block.
# Ratios are written as Keras writes them (72.0 / 16 ...) so that the float products round the same way.
V3_SMALL_BLOCKS = (
    (1, 16, 3, 2, True, "relu"), (72.0 / 16, 24, 3, 2, False, "relu"), (88.0 / 24, 24, 3, 1, False, "relu"),
    (4, 40, 5, 2, True, "h-swish"), (6, 40, 5, 1, True, "h-swish"), (6, 40, 5, 1, True, "h-swish"),
    (3, 48, 5, 1, True, "h-swish"), (3, 48, 5, 1, True, "h-swish"), (6, 96, 5, 2, True, "h-swish"),
    (6, 96, 5, 1, True, "h-swish"), (6, 96, 5, 1, True, "h-swish"),
)
V3_LARGE_BLOCKS = (
    (1, 16, 3, 1, False, "relu"), (4, 24, 3, 2, False, "relu"), (3, 24, 3, 1, False, "relu"),
    (3, 40, 5, 2, True, "relu"), (3, 40, 5, 1, True, "relu"), (3, 40, 5, 1, True, "relu"),
    (6, 80, 3, 2, False, "h-swish"), (2.5, 80, 3, 1, False, "h-swish"), (2.3, 80, 3, 1, False, "h-swish"),
    (2.3, 80, 3, 1, False, "h-swish"), (6, 112, 3, 1, True, "h-swish"), (6, 112, 3, 1, True, "h-swish"),
    (6, 160, 5, 2, True, "h-swish"), (6, 160, 5, 1, True, "h-swish"), (6, 160, 5, 1, True, "h-swish"),
)
STEM_CHANNELS = 16
HEAD_EXPANSION = 6
V3 = {"v3-small": ("MobileNet V3-Small", V3_SMALL_BLOCKS, 1024),
      "v3-large": ("MobileNet V3-Large", V3_LARGE_BLOCKS, 1280)}

PAPER = "MobileNetV3 paper, final version, Table 3"
V3_PUBLISHED = {
    ("v3-large", 1.0, 224): (Published(PAPER, 219, 5.4), Published("TF-slim checkpoint table", 217, 5.4)),
    ("v3-large", 0.75, 224): (Published(PAPER, 155, 4.0),),
    ("v3-small", 1.0, 224): (Published(PAPER, 56, 2.5),
                             Published("MobileNetV3 paper, early arXiv version", 66, 2.9,
                                       "superseded, see the notes")),
}

V3_NOTES = (
    "params follow the paper: conv and fully connected weights, without biases or BatchNorm. At 1.0-224 that "
    "is 5.45 M for Large (paper 5.4 M) and 2.53 M for Small (paper 2.5 M). Keras's count_params adds the biases "
    "of the SE convs, 'conv_2' and 'logits' and 4 BatchNorm values per channel: 5.51 M and 2.55 M, 2.0 % and "
    "2.2 % above the paper. That is within 3 % too, but the weights-only count is closer here and is the only "
    "one that also matches V2's published figure, so the papers count weights only.",
    "Mult-Adds include the SE blocks' 1x1 convs (on the pooled vector: 1.51 M in Large, 0.46 M in Small at "
    "1.0-224). Large 1.0-224 comes to 216.6 M against the paper's 219 M (-1.1 %); TF-slim's checkpoint table "
    "prints 217 M for it, and its README's '~215 M' is the count without the SE convs (215.1 M).",
    "V3-Small 1.0-224 at 66 M Mult-Adds (and 2.9 M parameters) is the figure of an early arXiv version of the "
    "V3 paper, printed before its V3-Small architecture table was revised; the final version lists 56 M and "
    "2.5 M, and that revised network is what keras.applications.MobileNetV3Small builds (56.5 M, 2.53 M here). "
    "TF-slim's checkpoint table still prints the old 66 M / 2.9 M.",
    "hard-swish x * ReLU6(x + 3) / 6 and hard-sigmoid ReLU6(x + 3) / 6 cost a few elementwise operations per "
    "value; they are not counted, as in the paper (nor is the SE's channel-wise scaling).",
    "Keras's V3 models begin with a Rescaling layer (0..255 pixels -> [-1, 1]) and have Dropout before the "
    "classifier; neither has weights or Mult-Adds.",
)


def mobilenet_v3_layers(arch: str, alpha: float, resolution: int, classes: int = 1000) -> list[Layer]:
    """One row per conv of keras.applications.MobileNetV3Small / MobileNetV3Large (`arch` 'v3-small' / 'v3-large')."""
    alpha = float(alpha)
    if arch not in V3:
        raise PipelineError(f"expected ARCH to be v3-small or v3-large, received ARCH={arch!r}")
    _, blocks, last_point = V3[arch]
    rows = [conv("Conv", 3, 2, resolution, 3, STEM_CHANNELS, "conv", activation="h-swish")]
    side, channels = rows[-1].output[0], STEM_CHANNELS
    for block, (expansion, base, kernel, stride, se, activation) in enumerate(blocks):
        expanded = make_divisible(channels * expansion)
        c_out = make_divisible(base * alpha)
        rows += inverted_residual(side, channels, expanded if block else None, c_out, kernel, stride,
                                  f"expanded_conv_{block}_" if block else "expanded_conv_", block, activation,
                                  make_divisible(expanded * SE_RATIO) if se else None)
        side, channels = rows[-1].output[0], c_out
    last_conv = make_divisible(channels * HEAD_EXPANSION)
    rows.append(conv("Conv 1x1", 1, 1, side, channels, last_conv, "conv_1", activation="h-swish"))
    hidden = make_divisible(last_point * alpha) if alpha > 1.0 else last_point
    return rows + classifier_rows(side, last_conv, classes, hidden=(hidden, "h-swish"), dense=False)


def cost_v3(arch: str, alpha: float, resolution: int, classes: int = 1000) -> InvertedResidualCost:
    """The cost of MobileNet V3-Small or V3-Large at `alpha` and `resolution` with `classes` outputs."""
    layers = mobilenet_v3_layers(arch, alpha, resolution, classes)
    alpha = float(alpha)
    return InvertedResidualCost(arch, V3[arch][0], alpha, resolution, classes, tuple(layers),
                                V3_PUBLISHED.get((arch, alpha, resolution), ()), COMMON_NOTES + V3_NOTES)
