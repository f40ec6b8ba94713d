"""Batched inference on artifacts for validation and predict: uint8 pixels in, float probabilities out.

Each model is fed the way it will be fed in deployment: float models get the normalised image, a
uint8-input .tflite gets the raw pixels (as Android's Task Library feeds them; its quantization
parameters carry the normalisation), an int8-input one gets the normalised image quantized.

Model files run through the runtime registry (benchmarks/runtimes/): by default the first registered runtime
installed here that runs the file's container (ai-edge-litert's Interpreter for .tflite, onnxruntime for
.onnx); `runtime=` names another (e.g. a new runtime of .onnx files, to compare it with onnxruntime).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from mobilenet_edge.benchmarks import runtimes as runtime_registry
from mobilenet_edge.benchmarks.runtimes._common import RunnerError
from mobilenet_edge.pipeline.errors import PipelineError


def runtimes_for(path: Path) -> tuple[str, ...]:
    """The registered runtimes (each member's first name) that run `path`'s container, installed ones first."""
    names = runtime_registry.names_for(Path(path).suffix[1:])
    here = [n for n in names if importlib.util.find_spec(runtime_registry.module_of(n).MODULE) is not None]
    return (*here, *(n for n in names if n not in here))


def installed_version(runtime: str) -> str | None:
    """The version of the pip distribution of `runtime` (a runner name) installed here; None when it is not."""
    try:
        return importlib.metadata.version(runtime_registry.module_of(runtime).PIP)
    except importlib.metadata.PackageNotFoundError:
        return None


def extra_runtimes(file: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The runtimes among `names` (validation's extra ones) that run `file`'s container."""
    container = Path(file).suffix[1:]
    return tuple(n for n in names if runtime_registry.container_of(n) == container)


class RuntimeModel:
    """A model file in a registered runtime's backend, batched where the file allows it; inputs quantized as the
    model asks, outputs dequantized."""

    def __init__(self, path: Path, batch: int = 32, threads: int = 2, runtime: str | None = None):
        path, container = Path(path), Path(path).suffix[1:]
        self.runtime = runtime or runtimes_for(path)[0]
        try:
            module = runtime_registry.module_of(self.runtime)
        except KeyError:
            raise PipelineError(f"expected a runtime among {runtime_registry.names()}, received {self.runtime!r}") from None
        if module.CONTAINER != container:
            raise PipelineError(f"expected a .{module.CONTAINER} file for runtime {self.runtime}, received {path.name}")
        try:
            self.backend = module.load(self.runtime, str(path), threads, batch=batch)
        except Exception as exc:
            cause = str(exc) if isinstance(exc, RunnerError) else f"{type(exc).__name__}: {exc}"
            raise PipelineError(f"expected a loadable .{container} model, received {path} ({cause})") from exc
        # A fixed batch (the pipeline's .tflite files have batch 1, as apps run them) is padded up to; a dynamic one
        # takes each batch as fed.
        self.pad = self.backend.batch is not None
        self.batch = self.backend.batch or batch
        self.input, self.output = self.backend.inputs[0], self.backend.outputs[0]
        self.input_shape = tuple(self.input["shape"][1:])

    def __call__(self, pixels: np.ndarray, normalize) -> np.ndarray:
        n = len(pixels)
        if self.pad and n < self.batch:
            pixels = np.concatenate([pixels, np.zeros((self.batch - n, *pixels.shape[1:]), pixels.dtype)])
        dtype = self.input["dtype"]
        if dtype == np.uint8:  # raw pixels: the quantization parameters carry the normalisation
            tensor = pixels
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x = normalize(pixels) / self.input["scale"] + self.input["zero_point"]
            tensor = np.clip(np.round(x), info.min, info.max).astype(dtype)
        else:
            tensor = normalize(pixels).astype(dtype)
        self.backend.feed([tensor])
        self.backend.run()
        y = np.asarray(self.backend.output())
        if np.issubdtype(y.dtype, np.integer) and self.output["scale"] is not None:
            y = (y.astype(np.float32) - self.output["zero_point"]) * self.output["scale"]
        return y.astype(np.float32)[:n]


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


def load(path: Path, batch: int = 32, threads: int = 2, runtime: str | None = None):
    """A model file through the runtime registry (`runtime`: a runner name; default the container's first
    installed runtime), or a .keras/.h5 float model."""
    suffix = Path(path).suffix
    if not Path(path).is_file():  # the runtimes would say "allocation null/empty" or "File not found"
        raise PipelineError(f"expected the model file {Path(path).name}, received no such file in {Path(path).parent} "
                            "(deleted or moved since it was exported?); export the variant again")
    if suffix in (".keras", ".h5"):
        return KerasModel(path, batch)
    if suffix[1:] in runtime_registry.containers():
        return RuntimeModel(path, batch, threads, runtime)
    suffixes = ", ".join(f".{c}" for c in runtime_registry.containers())
    raise PipelineError(f"expected a .keras, {suffixes} artifact, received {Path(path).name!r}")


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
