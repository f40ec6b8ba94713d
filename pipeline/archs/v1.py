"""MobileNet V1 (Howard et al. 2017, arXiv 1704.04861), as keras.applications.MobileNet builds it."""
from mobilenet_edge.pipeline.archs.entry import Arch
from mobilenet_edge.pipeline.archs.keras_apps import keras_application
from mobilenet_edge.pipeline.cost.v1 import cost_v1

V1 = Arch(
    key="v1", title="MobileNet V1", short_title="V1", prefix="mobilenet", paper="Howard et al. 2017, arXiv 1704.04861",
    # depth_multiplier is Keras's channels-per-depthwise-filter knob, not the paper's rho: it stays 1.
    factory=keras_application("MobileNet", depth_multiplier=1), cost=cost_v1,
    max_alpha=1.0, imagenet_alphas=(0.25, 0.5, 0.75, 1.0), imagenet_resolutions=(128, 160, 192, 224),
    mean=127.5, std=127.5, marker="o")
