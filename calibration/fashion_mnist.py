"""Fashion-MNIST (Xiao et al., 2017): the project's offline reference task with real labels.

Looked up, in order: a folder the user names, Debian's `dataset-fashion-mnist`, Keras's cache, the
copy embedded in this repository, and Keras's download (which needs the internet).

The embedded copy (calibration/data/fashion-mnist, MIT-licensed like the dataset) holds the whole test
split and the 5,000 training images that seed 0's calibration draws come from (the first 5,000 of seed
0's permutation of the 60,000, see `calibration.tasks.sample_rows`), so validation, calibration and the
demo give the same files with or without the full dataset; training needs the full 60,000.
"""
from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SIZES = {"train": 60_000, "test": 10_000}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
EMBEDDED_DIR = Path(__file__).with_name("data") / "fashion-mnist"
SUBSET_FILES = ("train-subset-images-idx3-ubyte.gz", "train-subset-labels-idx1-ubyte.gz",
                "train-subset-rows-idx1-int.gz")
KERAS_CACHE_DIR = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 (N, 28, 28), white garment on black
    labels: np.ndarray  # uint8 (N,)
    source: str
    rows: np.ndarray | None = None  # a subset: the split's row number of each image; None: the whole split

    @property
    def total(self) -> int:
        """Images in the whole split (60,000 / 10,000), whether this holds all of them or a subset."""
        return SIZES["train"] if self.rows is not None else len(self.labels)

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of the split's rows `index` (sorted), from the whole split or the subset."""
        if self.rows is None:
            return self.images[index], self.labels[index]
        position = np.searchsorted(self.rows, index)
        found = (position < len(self.rows)) & (self.rows[np.minimum(position, len(self.rows) - 1)] == index)
        if not found.all():
            raise PipelineError(
                f"expected the full Fashion-MNIST training split for {len(index)} images with this seed, received "
                f"only the embedded {len(self.rows):,}-image calibration subset ({int((~found).sum())} of the rows "
                "asked for are not in it); install Debian's dataset-fashion-mnist or set FASHION_MNIST_DIR")
        return self.images[position], self.labels[position]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    dtypes = {0x08: np.uint8, 0x0C: np.dtype(">i4")}
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in dtypes:
        raise PipelineError(f"expected an unsigned-byte or int32 IDX file, received {path} with header {data[:4].hex()}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
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


def load_split(split: str, data_dir: str | os.PathLike | None = None, whole: bool = False) -> Split:
    """Load the 'train' (60,000) or 'test' (10,000) split; the embedded training subset unless `whole`."""
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
    embedded = _embedded(split)
    if embedded is not None and not (whole and embedded.rows is not None):
        return embedded
    try:  # last resort: Keras's own download (needs the internet)
        import keras

        (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
        return Split(xtr, ytr, "keras download") if split == "train" else Split(xte, yte, "keras download")
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        looked = ", ".join(str(d) for d in candidate_dirs(data_dir))
        what = " (the embedded copy holds only 5,000 training images: training needs all 60,000)" if embedded else ""
        raise PipelineError(
            f"expected Fashion-MNIST IDX files ({img_stem}[.gz]) in one of {looked} or a Keras download, "
            f"received none{what} (download failed: {type(exc).__name__}); install Debian's dataset-fashion-mnist "
            "or pass --data-dir"
        ) from exc


def _embedded(split: str) -> Split | None:
    """The repository's own copy: the whole test split, a subset of the training split."""
    if split == "test":
        img, lbl = _find(EMBEDDED_DIR, FILES["test"][0]), _find(EMBEDDED_DIR, FILES["test"][1])
        return Split(read_idx(img), read_idx(lbl), str(EMBEDDED_DIR)) if img and lbl else None
    paths = [EMBEDDED_DIR / name for name in SUBSET_FILES]
    if not all(p.is_file() for p in paths):
        return None
    images, labels, rows = (read_idx(p) for p in paths)
    # The source names the folder, whose name is Debian's too: the TFLite metadata cites the folder's name,
    # so a file calibrated from either copy has the same bytes.
    return Split(images, labels, str(EMBEDDED_DIR), rows.astype(np.int64))
