"""The Keras graph that full-int8 TFLite conversion traces: the same function, in ops XNNPACK runs in int8.

MobileNet V3's hard-swish, x * relu6(x + 3) / 6, is fused by the TFLite converter into one HARD_SWISH op.
XNNPACK (ai-edge-litert 2.3) delegates HARD_SWISH in float32 but not in int8, so every int8 hard-swish runs
on TFLite's builtin kernel and cuts the delegated graph: V3-Small 224 became 20 XNNPACK partitions and its
int8 file ran 2.6-4.3x *slower* than fp32 (benchmarks/records/int8_speed.json has the before/after).

Here it is written as x * relu6(dw(x) + 3) / 6, where dw is a 1x1 depthwise convolution with weights 1:
the converter does not recognise the pattern and emits DEPTHWISE_CONV_2D (bias 3, fused RELU6) and MUL,
which XNNPACK delegates in int8 whatever the ranges. (x * relu6(x - (-3)) / 6 also escapes the fusion,
but XNNPACK's int8 SUB/ADD reject an input range 256x wider than the output's [0, 6], which happens with
untrained BatchNorm statistics; a convolution's requantization has no such limit.) The function is the
same and the weight 1 and bias 3 are exact in int8; only the rounding differs (the product is requantized
once more), which the accuracy gate checks. `pipeline.convert.fastpath` audits every file, so a converter that
starts matching the new form is caught.
"""
from __future__ import annotations

from mobilenet_edge.pipeline.errors import PipelineError

HARD_SWISH_FORMS = ("split", "fused")  # split: DEPTHWISE_CONV_2D(relu6) + MUL, delegated in int8; fused: HARD_SWISH


def _is_hard_swish(layer) -> bool:
    activation = getattr(layer, "activation", None)
    # Keras 3 registers hard_swish as an alias of hard_silu; the layer keeps whichever name it was given.
    return layer.__class__.__name__ == "Activation" and getattr(activation, "__name__", "") in ("hard_swish", "hard_silu")


def split_hard_swish_layer(name: str):
    """A Keras layer computing hard-swish as x * relu6(dw(x) + 3) * (1/6) (see the module docstring)."""
    import keras

    class SplitHardSwish(keras.layers.Layer):
        def call(self, x):
            # The identity 1x1 depthwise conv hides `x + 3` from the converter's HARD_SWISH pattern.
            ones = keras.ops.ones((1, 1, x.shape[-1], 1), dtype=x.dtype)
            shifted = keras.ops.depthwise_conv(x, ones, padding="valid") + 3.0
            return x * keras.ops.relu6(shifted) * (1.0 / 6.0)

    return SplitHardSwish(name=name)


def int8_clone_function(hard_swish: str = "split"):
    """`keras.models.clone_model(clone_function=...)` that swaps hard-swish layers for their split form.

    None for the "fused" form (Keras's default cloning). Only weightless layers are replaced, so the clone's
    weight list equals the original's.
    """
    if hard_swish not in HARD_SWISH_FORMS:
        raise PipelineError(f"expected hard_swish in {HARD_SWISH_FORMS}, received {hard_swish!r}")

    def clone(layer):
        if hard_swish == "split" and _is_hard_swish(layer):
            return split_hard_swish_layer(layer.name)
        return layer.__class__.from_config(layer.get_config())

    return clone if hard_swish == "split" else None
