"""The factory of the members keras.applications ships (V1, V2, V3): its function with the project's options."""
from __future__ import annotations

from typing import Callable


def keras_application(function: str, **options) -> Callable:
    """A factory (alpha, resolution, classes, weights=None) -> keras.applications.<function>(...)."""

    def factory(alpha: float, resolution: int, classes: int, weights=None):
        import keras

        build = getattr(keras.applications, function)
        return build(input_shape=(resolution, resolution, 3), alpha=alpha, include_top=True, weights=weights,
                     classes=classes, classifier_activation="softmax", **options)

    factory.__name__ = f"keras.applications.{function}"
    return factory
