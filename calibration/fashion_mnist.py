"""Fashion-MNIST (Xiao et al., 2017): the project's offline reference task with real labels.

Looked up, in order: a folder the user names, Debian's `dataset-fashion-mnist`, Keras's cache,
and Keras's download (which needs the internet).
"""
from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_DIR = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 (N, 28, 28), white garment on black
    labels: np.ndarray  # uint8 (N,)
    source: str


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise PipelineError(f"expected an unsigned-byte IDX file, received {path} with header {data[:4].hex()}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise PipelineError(f"expected {np.prod(dims)} values in {path}, received {body.size} (truncated file?)")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def candidate_dirs(user_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs = [Path(user_dir)] if user_dir else []
    env = os.environ.get("FASHION_MNIST_DIR")
    if env:
        dirs.append(Path(env))
    return dirs + [DEBIAN_DIR, KERAS_CACHE_DIR]


def load_split(split: str, data_dir: str | os.PathLike | None = None) -> Split:
    """Load the 'train' (60,000) or 'test' (10,000) split."""
    if split not in FILES:
        raise PipelineError(f"expected split 'train' or 'test', received {split!r}")
    img_stem, lbl_stem = FILES[split]
    for folder in candidate_dirs(data_dir):
        img, lbl = _find(folder, img_stem), _find(folder, lbl_stem)
        if img and lbl:
            images, labels = read_idx(img), read_idx(lbl)
            if len(images) != len(labels):
                raise PipelineError(f"expected as many labels as images in {folder}, received {len(labels)} and {len(images)}")
            return Split(images, labels, str(folder))
    try:  # last resort: Keras's own download (needs the internet)
        import keras

        (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
        return Split(xtr, ytr, "keras download") if split == "train" else Split(xte, yte, "keras download")
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        looked = ", ".join(str(d) for d in candidate_dirs(data_dir))
        raise PipelineError(
            f"expected Fashion-MNIST IDX files ({img_stem}[.gz]) in one of {looked} or a Keras download, "
            f"received none (download failed: {type(exc).__name__}); install Debian's dataset-fashion-mnist "
            "or pass --data-dir"
        ) from None
