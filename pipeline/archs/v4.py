"""MobileNet V4 Conv-S and Conv-M (Qin et al. 2024, arXiv 2404.10518): Keras models written from the paper's
architecture tables, which keras.applications does not ship.

The block tables and the cost rows live in pipeline/cost/v4.py (pure Python); this module turns the same
tables into Keras layers, with the layer names the cost rows give. Only operations that TFLite int8, ONNX QDQ
and XNNPACK run natively: Conv2D, DepthwiseConv2D (BatchNorm folds into both), ReLU, Add, average pooling,
a Dense classifier. No bias before a BatchNorm; 'same' padding throughout.
"""
from __future__ import annotations

from mobilenet_edge.pipeline.archs.entry import Arch
from mobilenet_edge.pipeline.cost.v2 import make_divisible
from mobilenet_edge.pipeline.cost.v4 import HEAD_CHANNELS, STEM_CHANNELS, V4, cost_v4

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
DROPOUT = 0.2


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool, depthwise: bool = False):
    from keras import layers

    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _uib(x, channels: int, spec: tuple, alpha: float, p: str):
    """One Universal Inverted Bottleneck: [dw start] -> 1x1 expand -> [dw middle] -> 1x1 project (+ residual)."""
    from keras import layers

    _, start, middle, stride, ratio, out = spec
    expanded, c_out = make_divisible(channels * ratio), make_divisible(out * alpha)
    shortcut = x
    if start:
        x = _conv_bn(x, channels, start, 1 if middle else stride, f"{p}dw_start", relu=False, depthwise=True)
    x = _conv_bn(x, expanded, 1, 1, f"{p}expand", relu=True)
    if middle:
        x = _conv_bn(x, expanded, middle, stride, f"{p}dw_mid", relu=True, depthwise=True)
    x = _conv_bn(x, c_out, 1, 1, f"{p}project", relu=False)
    if stride == 1 and channels == c_out:
        x = layers.Add(name=f"{p}add")([shortcut, x])
    return x, c_out


def mobilenet_v4(arch: str, alpha: float, resolution: int, classes: int, weights=None):
    """The Keras MobileNet V4 `arch` ('v4-conv-s' / 'v4-conv-m'), softmax classifier; no pretrained weights."""
    import keras
    from keras import layers

    if weights is not None:
        raise ValueError(f"MobileNet V4 has no Keras weights to load. Received: weights={weights!r}")
    title, blocks = V4[arch]
    inputs = keras.Input((resolution, resolution, 3), name="input")
    x = _conv_bn(inputs, STEM_CHANNELS, 3, 2, "stem_conv", relu=True)
    channels = STEM_CHANNELS
    for block, spec in enumerate(blocks):
        p = f"block{block}_"
        if spec[0] == "conv":
            _, kernel, stride, out = spec
            channels = make_divisible(out * alpha)
            x = _conv_bn(x, channels, kernel, stride, f"{p}conv", relu=True)
        elif spec[0] == "fused":
            _, kernel, stride, ratio, out = spec
            x = _conv_bn(x, make_divisible(channels * ratio), kernel, stride, f"{p}fused", relu=True)
            channels = make_divisible(out * alpha)
            x = _conv_bn(x, channels, 1, 1, f"{p}project", relu=False)
        else:
            x, channels = _uib(x, channels, spec, alpha, p)
    hidden = make_divisible(HEAD_CHANNELS * alpha) if alpha > 1.0 else HEAD_CHANNELS
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    x = _conv_bn(x, hidden, 1, 1, "head_conv", relu=True)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(DROPOUT, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=title.replace(" ", "_").lower())


def _entry(key: str, short: str, marker: str) -> Arch:
    return Arch(
        key=key, title=f"MobileNet V4 {short}", short_title=f"V4-{short}", prefix=f"mobilenet_{key.replace('-', '_')}",
        paper="Qin et al. 2024, arXiv 2404.10518",
        factory=lambda alpha, resolution, classes, weights=None: mobilenet_v4(key, alpha, resolution, classes, weights),
        cost=lambda alpha, resolution, classes=1000: cost_v4(key, alpha, resolution, classes),
        max_alpha=1.0, imagenet_alphas=(), imagenet_resolutions=None,
        # Like V1/V2: (pixel - 127.5) / 127.5, inputs in [-1, 1]; the model has no Rescaling layer of its own.
        mean=127.5, std=127.5, marker=marker)


V4_CONV_S = _entry("v4-conv-s", "Conv-S", "v")
V4_CONV_M = _entry("v4-conv-m", "Conv-M", "p")
