"""Checks of a folder task's images before any training: one line per problem a user can act on.

- a class with too few images (the model cannot learn it, and its held-out accuracy is a handful of images);
- a strong class imbalance (the held-out accuracy then mostly measures the large classes);
- duplicate images (same bytes) on both sides of the train / held-out split (held-out accuracy inflated);
- unreadable files (counted; training and validation skip them);
- images far smaller than RES (upsampled blur the model will not see on a phone's camera).

Also the split itself (calibration.tasks.SPLIT_RULE: by a hash of each file's relative path, so it never
changes when files are added) and a content hash of the whole file list, recorded with the checkpoint: a
later run knows whether the data changed.
"""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from mobilenet_edge.calibration.images import IMAGE_SUFFIXES
from mobilenet_edge.calibration.tasks import SPLIT_RULE, split_of
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

MIN_PER_CLASS = 20  # training images; below it a class is learned from a handful of examples
MAX_IMBALANCE = 3.0  # largest / smallest class
SMALL_FRACTION = 0.5  # "far smaller": the shorter side below half of RES
EXAMPLES = 3  # files named per problem line


@dataclass(frozen=True)
class FolderCheck:
    classes: tuple[str, ...]
    counts: dict  # class -> {"train": n, "val": n, "test": n} (readable images)
    unreadable: tuple[str, ...]  # relative paths
    duplicates: tuple[tuple[str, str], ...]  # (train file, held-out file) with the same content
    small: tuple[str, ...]  # relative paths of images far smaller than RES
    problems: tuple[str, ...]  # one line each
    split: dict  # the rule, the count and the sha256 of each split's file list
    content_sha256: str  # of every (relative path, content sha256), sorted: changes when any file does

    def to_dict(self) -> dict:
        d = asdict(self)
        d["duplicates"] = [list(pair) for pair in self.duplicates]
        return d


def check_folder(root: str | Path, resolution: int) -> FolderCheck:
    """Read every image of a folder task once; return what is wrong with it (`problems`), without raising
    for anything but a folder that is not a task at all."""
    root = Path(root)
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir())) if root.is_dir() else ()
    if len(classes) < 2:
        raise PipelineError(f"expected a folder with at least 2 class sub-folders, received {len(classes)} in {root}")
    counts = {c: {"train": 0, "val": 0, "test": 0} for c in classes}
    files = {"train": [], "val": [], "test": []}
    unreadable, small, digests = [], [], []
    by_content = defaultdict(list)  # content sha256 -> [(split, relative path)]
    for cls in classes:
        for f in sorted((root / cls).rglob("*")):
            if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():
                continue
            rel = f.relative_to(root).as_posix()
            data = f.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            digests.append(f"{rel}\t{digest}")
            try:
                with Image.open(f) as im:
                    im.load()
                    shorter = min(im.size)
            except Exception as exc:  # PIL raises many types for corrupt data
                unreadable.append(f"{rel} ({type(exc).__name__})")
                continue
            split = split_of(Path(rel))
            counts[cls][split] += 1
            files[split].append(rel)
            by_content[digest].append((split, rel))
            if shorter < resolution * SMALL_FRACTION:
                small.append(f"{rel} ({shorter} px)")
    duplicates = tuple((train[0][1], held[0][1]) for train, held in (
        ([e for e in entries if e[0] == "train"], [e for e in entries if e[0] != "train"])
        for entries in by_content.values()) if train and held)
    split = {"rule": SPLIT_RULE, **{name: {"images": len(v), "sha256": _sha256_lines(v)} for name, v in files.items()}}
    check = FolderCheck(classes, counts, tuple(unreadable), duplicates, tuple(small), (), split,
                        _sha256_lines(sorted(digests)))
    return FolderCheck(**{**check.__dict__, "problems": tuple(problem_lines(check, resolution))})


def problem_lines(check: FolderCheck, resolution: int) -> list[str]:
    """One line per problem, each saying what was found and what it does to the model."""
    lines = []
    train = {c: n["train"] for c, n in check.counts.items()}
    for cls, n in train.items():
        if n < MIN_PER_CLASS:
            lines.append(f"class {cls!r} has {n} training images, expected at least {MIN_PER_CLASS}: add photos "
                         "or merge the class; its held-out accuracy rests on a handful of images")
    largest, smallest = max(train, key=train.get), min(train, key=train.get)
    if train[smallest] and train[largest] / train[smallest] > MAX_IMBALANCE:
        lines.append(f"class imbalance: {largest!r} has {train[largest]} training images, {smallest!r} "
                     f"{train[smallest]} (x{train[largest] / train[smallest]:.1f}, expected at most "
                     f"x{MAX_IMBALANCE:g}); training samples classes evenly, but overall accuracy mostly measures "
                     "the large classes")
    if check.duplicates:
        pairs = _examples([" = ".join(d) for d in check.duplicates])
        lines.append(f"{len(check.duplicates)} image(s) in the training split also appear (same content) in the "
                     f"held-out split, which inflates held-out accuracy: {pairs}")
    if check.unreadable:
        lines.append(f"{len(check.unreadable)} unreadable file(s), skipped: {_examples(check.unreadable)}")
    if check.small:
        lines.append(f"{len(check.small)} image(s) far smaller than RES={resolution} (shorter side below "
                     f"{int(resolution * SMALL_FRACTION)} px, upsampled blur): {_examples(check.small)}")
    return lines


def _sha256_lines(lines) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _examples(items) -> str:
    items = list(items)
    more = f" and {len(items) - EXAMPLES} more" if len(items) > EXAMPLES else ""
    return ", ".join(items[:EXAMPLES]) + more
