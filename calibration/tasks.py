"""Tasks: what the model classifies, where its labelled images come from, and how they are preprocessed.

- `fashion-mnist`: the offline reference task (10 classes, real labels); train split for training and
  calibration, test split (10,000) held out for validation.
- `imagenet`: 1,000 classes; no images offline, so calibration needs CALIB and labelled validation EVAL.
- a folder of class sub-folders: the user's own task; files are split by a hash of their path (`split_of`):
  20 % test (held out: validation), 10 % val (early stopping while training), 70 % train, so that
  calibration, early stopping and validation never share an image.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mobilenet_edge.calibration import fashion_mnist
from mobilenet_edge.calibration.images import IMAGE_SUFFIXES, find_images, load_rgb
from mobilenet_edge.calibration.preprocessing import Preprocessing
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

IMAGENET_LABELS = Path(__file__).with_name("imagenet_class_index.json")


@dataclass(frozen=True)
class LabeledImages:
    """uint8 pixels (N, R, R, 3) after crop + resize, integer labels (N,) or None, and their provenance."""

    pixels: np.ndarray
    labels: np.ndarray | None
    source: str
    names: tuple[str, ...]  # one per image: file path or "split[index]"
    skipped: int = 0

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()


@dataclass(frozen=True)
class Task:
    name: str  # "fashion-mnist", "imagenet" or the folder path
    kind: str  # "fashion-mnist" | "imagenet" | "folder"

    @property
    def slug(self) -> str:
        """Folder-name form of the task, used in output paths."""
        return self.kind if self.kind != "folder" else Path(self.name).resolve().name

    @cached_property
    def class_names(self) -> tuple[str, ...]:
        if self.kind == "fashion-mnist":
            return fashion_mnist.CLASS_NAMES
        if self.kind == "imagenet":
            index = json.loads(IMAGENET_LABELS.read_text())
            return tuple(index[str(i)][1] for i in range(1000))
        return tuple(sorted(p.name for p in Path(self.name).iterdir() if p.is_dir()))

    @cached_property
    def synsets(self) -> tuple[str, ...]:
        if self.kind != "imagenet":
            return self.class_names
        index = json.loads(IMAGENET_LABELS.read_text())
        return tuple(index[str(i)][0] for i in range(1000))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def default_weights(self) -> str:
        return {"fashion-mnist": "reference", "imagenet": "imagenet"}.get(self.kind, "random")

    def preprocessing(self, resolution: int, arch: str = "v1") -> Preprocessing:
        """The contract for this task at `resolution`; the normalisation is the architecture's (V3: 0..255)."""
        from mobilenet_edge.pipeline.archs import get_arch

        # Fashion-MNIST garments fill their 28 px frame and the reference weights were trained without a
        # crop; photos (ImageNet, user folders) get the usual 87.5 % central crop.
        crop = 1.0 if self.kind == "fashion-mnist" else 0.875
        a = get_arch(arch)
        return Preprocessing(resolution=resolution, crop_fraction=crop, mean=(a.mean,) * 3, std=(a.std,) * 3)

    def labeled_images(self, split: str, resolution: int, limit: int | None = None, seed: int = 0,
                       progress: bool = True) -> LabeledImages:
        """Images of `split` ('train', 'test'; folders also 'val'), `limit` of them drawn with `seed`, cropped
        and resized."""
        pre = self.preprocessing(resolution)
        if self.kind == "fashion-mnist":
            data = fashion_mnist.load_split(split, whole=limit is None)
            index = sample_rows(data.total, limit, seed)
            images, labels = data.take(index)
            pixels = np.stack([
                pre.crop_and_resize(Image.fromarray(image, "L"))
                for image in tqdm(images, desc=f"fashion-mnist {split}", disable=not progress, leave=False)
            ])
            names = tuple(f"fashion-mnist/{split}[{i}]" for i in index)
            return LabeledImages(pixels, labels.astype(np.int64), data.source, names)
        if self.kind == "folder":
            files, labels = self._folder_split(split)
            index = sample_rows(len(files), limit, seed)
            return read_images([files[i] for i in index], pre, labels[index], source=self.name, progress=progress)
        raise PipelineError(
            "expected labelled images for task imagenet, received none: ImageNet images are not available "
            "offline; pass EVAL=<ImageNet-val folder with one sub-folder per synset> or CALIB=<image folder>"
        )

    def _folder_split(self, split: str) -> tuple[list[Path], np.ndarray]:
        root = Path(self.name)
        classes = self.class_names
        if len(classes) < 2:
            raise PipelineError(f"expected a folder with at least 2 class sub-folders, received {len(classes)} in {root}")
        files, labels = [], []
        for label, cls in enumerate(classes):
            for f in sorted((root / cls).rglob("*")):
                if f.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if split_of(f.relative_to(root)) == split:
                    files.append(f)
                    labels.append(label)
        if not files:
            raise PipelineError(f"expected images in the {split} part of {root}, received none")
        return files, np.asarray(labels, np.int64)


SPLIT_RULE = "h = sha256(path relative to the folder); h % 5 == 0: test; else (h // 5) % 8 == 0: val; else train"


def split_of(relative: Path) -> str:
    """'train', 'val' or 'test' for a file of a folder task, from its relative path alone (SPLIT_RULE).

    The test files are those of the original 80/20 split, so adding the val split changed no held-out set.
    """
    h = int(hashlib.sha256(Path(relative).as_posix().encode()).hexdigest(), 16)
    return "test" if h % 5 == 0 else "val" if (h // 5) % 8 == 0 else "train"


def sample_rows(n: int, limit: int | None, seed: int) -> np.ndarray:
    """`limit` of the row numbers 0..n-1 (all when None), sorted: the first `limit` of seed's permutation.

    A prefix, so that a larger limit draws a superset of a smaller one's images (more calibration samples
    only add images) and the embedded Fashion-MNIST subset, seed 0's first 5,000, serves every limit up to it.
    """
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def read_images(files: list[Path], pre: Preprocessing, labels: np.ndarray | None = None, source: str = "",
                progress: bool = True) -> LabeledImages:
    """Decode, crop and resize files; unreadable files are skipped and counted."""
    pixels, names, keep = [], [], []
    for i, f in enumerate(tqdm(files, desc="images", disable=not progress, leave=False)):
        try:
            pixels.append(pre.crop_and_resize(load_rgb(f)))
        except PipelineError as exc:
            log.warning("skipping %s", exc)
            continue
        names.append(str(f))
        keep.append(i)
    if not pixels:
        raise PipelineError(f"expected at least one readable image in {source or 'the given files'}, received {len(files)} unreadable")
    kept_labels = None if labels is None else np.asarray(labels)[keep]
    return LabeledImages(np.stack(pixels), kept_labels, source, tuple(names), skipped=len(files) - len(keep))


def imagenet_folder(folder: str | Path, pre: Preprocessing, synsets: tuple[str, ...], limit: int | None,
                    seed: int, progress: bool = True) -> LabeledImages:
    """An ImageNet-val style folder: one sub-folder per synset (n01440764/...) gives labels.

    Any other layout is read as unlabelled images: validation then reports agreement metrics only.
    """
    files = find_images(folder)
    position = {s: i for i, s in enumerate(synsets)}
    parents = [f.relative_to(folder).parts for f in files]
    labelled = all(len(p) > 1 and p[0] in position for p in parents)
    if not labelled:
        log.warning("%s is not one sub-folder per ImageNet synset: validating without labels", folder)
    labels = np.asarray([position[p[0]] for p in parents]) if labelled else None
    index = sample_rows(len(files), limit, seed)
    return read_images([files[i] for i in index], pre, None if labels is None else labels[index],
                       source=str(folder), progress=progress)


def resolve_task(task: str) -> Task:
    """'fashion-mnist' | 'imagenet' | a folder of class sub-folders."""
    if task in ("fashion-mnist", "imagenet"):
        return Task(task, task)
    path = Path(task)
    if path.is_dir():
        return Task(str(path), "folder")
    raise PipelineError(
        f"expected TASK to be 'imagenet', 'fashion-mnist' or a folder of class sub-folders, received {task!r}"
    )
