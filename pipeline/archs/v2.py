"""MobileNet V2 (Sandler et al. 2018, arXiv 1801.04381), as keras.applications.MobileNetV2 builds it."""
from mobilenet_edge.pipeline.archs.entry import Arch
from mobilenet_edge.pipeline.archs.keras_apps import keras_application
from mobilenet_edge.pipeline.cost.v2 import cost_v2

V2 = Arch(
    key="v2", title="MobileNet V2", short_title="V2", prefix="mobilenet_v2", paper="Sandler et al. 2018, arXiv 1801.04381",
    factory=keras_application("MobileNetV2"), cost=cost_v2,
    max_alpha=1.4, imagenet_alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4), imagenet_resolutions=(96, 128, 160, 192, 224),
    mean=127.5, std=127.5, marker="s")
