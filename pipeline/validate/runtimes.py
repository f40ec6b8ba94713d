"""Batched inference on artifacts for validation and predict: uint8 pixels in, float probabilities out.

Each model is fed the way it will be fed in deployment: float models get the normalised image, a
uint8-input .tflite gets the raw pixels (as Android's Task Library feeds them; its quantization
parameters carry the normalisation), an int8-input one gets the normalised image quantized.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.convert.tflite import dequantize_output, quantize_input
from mobilenet_edge.pipeline.errors import PipelineError


class TFLiteModel:
    """ai-edge-litert Interpreter, batched where the model allows it; inputs quantized as the model asks."""

    def __init__(self, path: Path, batch: int = 32, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            inp = self.interpreter.get_input_details()[0]
            # The pipeline's .tflite files have batch 1 fixed (as apps run them); others may be resized.
            self.batch = batch if inp["shape_signature"][0] == -1 else int(inp["shape"][0])
            if self.batch != inp["shape"][0]:
                self.interpreter.resize_tensor_input(inp["index"], [self.batch, *inp["shape"][1:]])
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise PipelineError(f"expected a loadable .tflite model, received {path} ({type(exc).__name__}: {exc})") from exc
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(s) for s in self.input["shape"][1:])

    def __call__(self, pixels: np.ndarray, normalize) -> np.ndarray:
        n = len(pixels)
        if n < self.batch:
            pixels = np.concatenate([pixels, np.zeros((self.batch - n, *pixels.shape[1:]), pixels.dtype)])
        if np.dtype(self.input["dtype"]) == np.uint8:
            tensor = pixels
        else:
            tensor = quantize_input(normalize(pixels), self.input)
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        return dequantize_output(self.interpreter.get_tensor(self.output["index"]), self.output)[:n]


class ONNXModel:
    def __init__(self, path: Path, batch: int = 32, threads: int = 2):
        from mobilenet_edge.pipeline.convert.onnx import session

        self.batch = batch
        try:
            self.session = session(path, threads)
        except Exception as exc:
            raise PipelineError(f"expected a loadable .onnx model, received {path} ({type(exc).__name__}: {exc})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = tuple(self.session.get_inputs()[0].shape[1:])

    def __call__(self, pixels: np.ndarray, normalize) -> np.ndarray:
        return self.session.run(None, {self.input_name: normalize(pixels)})[0].astype(np.float32)


class KerasModel:
    def __init__(self, path_or_model, batch: int = 32):
        if isinstance(path_or_model, (str, Path)):
            path_or_model = load_keras(Path(path_or_model))
        self.model = path_or_model
        self.batch = batch
        self.input_shape = tuple(self.model.input_shape[1:])

    def __call__(self, pixels: np.ndarray, normalize) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(normalize(pixels)), np.float32)


def load_keras(path: Path):
    """A whole Keras model from a .keras file (a zip archive) or .h5, with one line when the file is none."""
    import zipfile

    import keras

    if not path.is_file():
        raise PipelineError(f"expected the Keras model {path.name}, received no such file in {path.parent}")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise PipelineError(f"expected a Keras model file (.keras: a zip archive), received {path}, which is not a "
                            "zip archive (damaged or not a model); export the variant again")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras's own words for a damaged archive vary by version
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"expected a loadable Keras model, received {path} ({first})") from exc


def load(path: Path, batch: int = 32, threads: int = 2):
    suffix = Path(path).suffix
    if not Path(path).is_file():  # the runtimes would say "allocation null/empty" or "File not found"
        raise PipelineError(f"expected the model file {Path(path).name}, received no such file in {Path(path).parent} "
                            "(deleted or moved since it was exported?); export the variant again")
    if suffix == ".tflite":
        return TFLiteModel(path, batch, threads)
    if suffix == ".onnx":
        return ONNXModel(path, batch, threads)
    if suffix in (".keras", ".h5"):
        return KerasModel(path, batch)
    raise PipelineError(f"expected a .keras, .tflite or .onnx artifact, received {Path(path).name!r}")


def predict(model, pixels: np.ndarray, normalize, progress=None) -> np.ndarray:
    """Run `model` over uint8 images (N, H, W, 3) in batches; `normalize` is the preprocessing contract's.

    `progress` is an optional tqdm-like object.
    """
    outputs = []
    for i in range(0, len(pixels), model.batch):
        outputs.append(model(pixels[i:i + model.batch], normalize))
        if progress is not None:
            progress.update(min(model.batch, len(pixels) - i))
    return np.concatenate(outputs)
