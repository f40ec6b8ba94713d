"""Transfer: a new task's model started from another model's weights, its classifier head replaced.

A MobileNet's layers before the classifier do not depend on the number of classes, so any checkpoint of the
same architecture and alpha can start a new task: every layer but the last one with weights (V1's
`conv_preds`, V2's `predictions`, V3's `logits`) is copied, and that classifier starts from scratch unless
the source was trained on exactly the task's classes. Sources (`INIT=`):

- `random`: nothing copied (from scratch);
- `imagenet`: Keras's ImageNet weights (downloaded; offline the usual one-line error);
- `reference`: the committed Fashion-MNIST checkpoint of this arch and alpha (pipeline/checkpoints/);
- a `.weights.h5`/`.h5` checkpoint with its training record beside it (the record names its classes), or a
  `.keras` model, of the same arch and alpha, whatever its classes.

Convolution weights do not depend on the input side either, so a source is built at its own side (ImageNet
weights exist at 128-224 px only) and its weights are used at any RES.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline import build
from mobilenet_edge.pipeline.archs import get_arch
from mobilenet_edge.pipeline.config import Variant, check_init
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Transfer:
    """What a model was started from: the training record's "transfer" entry."""

    init: str  # 'random' | 'imagenet' | 'reference' | the source file
    source: str | None  # the file (or 'keras imagenet') the weights came from
    source_classes: tuple[str, ...] | int | None  # the source's class names, or only their number
    kept: tuple[str, ...]  # layers whose weights were copied
    new: tuple[str, ...]  # layers that start from scratch (the replaced head)

    @property
    def head_replaced(self) -> bool:
        return self.init != "random" and bool(self.new)

    def to_dict(self) -> dict:
        return {"init": self.init, "source": self.source,
                "source_classes": list(self.source_classes) if isinstance(self.source_classes, tuple)
                else self.source_classes,
                "head_replaced": self.head_replaced, "kept_layers": len(self.kept), "new_layers": list(self.new),
                "kept": list(self.kept)}


def head_layers(model) -> list:
    """The classifier: the last layer with weights (V1 conv_preds, V2 predictions, V3 logits)."""
    return [[layer for layer in model.layers if layer.weights][-1]]


def _source(variant: Variant, init: str):
    """(source Keras model, where it came from, its class names or count)."""
    arch = get_arch(variant.arch)
    if init == "imagenet":
        sizes = arch.imagenet_resolutions
        side = variant.resolution if not sizes or variant.resolution in sizes else max(sizes)
        model = build._imagenet_model(Variant(variant.alpha, side, "imagenet", "imagenet", variant.arch), 1000)
        return model, "keras imagenet", 1000
    path = build.reference_checkpoint("fashion-mnist", variant.alpha, variant.arch) if init == "reference" \
        else Path(init)
    if path.suffix == ".keras":
        import keras

        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for a file that is not a model
            raise PipelineError(f"expected a Keras model file, received {path.name} ({type(exc).__name__})") from None
        return model, str(path), int(model.output_shape[-1])
    record = build.checkpoint_info(path)
    if not record.get("classes"):
        raise PipelineError(f"expected the training record {path.name.replace('.weights.h5', '.json')} beside "
                            f"{path.name} (it names the classes the checkpoint was trained on), received none")
    classes = tuple(record["classes"])
    side = record.get("resolution", variant.resolution)
    model = build.mobilenet(variant.alpha, side, len(classes), arch=variant.arch)
    build.load_weights_file(model, path, Variant(variant.alpha, side, variant.task, str(path), variant.arch))
    # A multi-resolution checkpoint's BatchNorm statistics measured nearest the new side (see pipeline.build).
    build.load_batchnorm_statistics(model, path, variant.resolution)
    return model, str(path), classes


def initial_model(variant: Variant, class_names: tuple[str, ...], init: str):
    """A Keras model for `variant` with len(class_names) outputs, started from `init`; returns (model, Transfer).

    The head is kept only when the source was trained on exactly these class names, in this order.
    """
    check_init(init)
    if init == "random":
        model = build.mobilenet(variant.alpha, variant.resolution, len(class_names), arch=variant.arch)
        return model, Transfer("random", None, None, (), tuple(l.name for l in model.layers if l.weights))
    source, where, source_classes = _source(variant, init)
    weights = [(layer.name, layer.get_weights()) for layer in source.layers]
    del source
    model = build.mobilenet(variant.alpha, variant.resolution, len(class_names), arch=variant.arch)
    keep_head = isinstance(source_classes, tuple) and source_classes == tuple(class_names)
    head = set() if keep_head else {layer.name for layer in head_layers(model)}
    if len(weights) != len(model.layers):
        raise PipelineError(f"expected a {get_arch(variant.arch).title} alpha={variant.alpha} model as INIT, "
                            f"received {Path(where).name} with {len(weights)} layers instead of {len(model.layers)}")
    kept, new = [], []
    for layer, (name, values) in zip(model.layers, weights):
        if not layer.weights:
            continue
        if layer.name in head:
            new.append(layer.name)
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [v.shape for v in values]:
            raise PipelineError(
                f"expected a {get_arch(variant.arch).title} alpha={variant.alpha} model as INIT, received "
                f"{Path(where).name} whose layer {name} has shapes {[v.shape for v in values]} instead of {shapes}")
        layer.set_weights(values)
        kept.append(layer.name)
    transfer = Transfer(init, where, source_classes, tuple(kept), tuple(new))
    log.info("transfer from %s: %d layers kept, %s", where, len(kept),
             f"head {', '.join(new)} replaced ({_count(source_classes)} -> {len(class_names)} classes)" if new
             else "head kept (same classes)")
    return model, transfer


def _count(classes) -> int:
    return len(classes) if isinstance(classes, tuple) else int(classes)
