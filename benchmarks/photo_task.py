"""A folder task that looks like a user's photos, made deterministically from Fashion-MNIST garments.

Each image: one garment of the Fashion-MNIST *test* split (never seen by the reference checkpoints, which
were trained on the train split), upsampled from 28 px, coloured, placed at a random size and offset on a
tinted background with a gradient and sensor noise, saved as a JPEG. So the task is RGB, larger than the
model's input, compressed, and no longer white-on-black: the reference backbone has seen clothes, not these
pictures. `make_photo_task(root)` writes `root/<class>/<nnn>.jpg`; the same arguments give the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mobilenet_edge.calibration import fashion_mnist

CLASSES = {"trouser": 1, "sneaker": 7, "bag": 8}  # folder name -> Fashion-MNIST label


def photo(garment: np.ndarray, rng: np.random.Generator, side: int, backdrop: str = "dark") -> Image.Image:
    """One 28 x 28 grey garment (white on black) as a `side` x `side` RGB picture; `backdrop` 'dark' (a lit
    garment on a darker backdrop) or 'light' (a dark garment on a light, tinted backdrop: the reverse of
    Fashion-MNIST's contrast, as in a phone photo on a table or a wall)."""
    size = int(rng.integers(int(side * 0.75), int(side * 0.95)))
    shade = np.asarray(Image.fromarray(garment).resize((size, size), Image.BICUBIC), np.float32) / 255
    alpha = np.clip(shade * 3, 0, 1)[..., None]  # the garment's silhouette
    # 'dark': a lit garment on a darker backdrop, as in a product shot (and as in Fashion-MNIST: light on dark).
    light = backdrop == "light"
    colour = rng.uniform(15, 110, 3) if light else rng.uniform(140, 255, 3)
    garment_rgb = colour * ((1.3 - 0.5 * shade[..., None]) if light else (0.35 + 0.65 * shade[..., None]))
    top, left = rng.integers(0, side - size + 1, 2)
    background = rng.uniform(*((165, 245) if light else (10, 100)), 3) \
        + np.linspace(-15, 15, side)[:, None, None] * rng.choice([-1, 1])
    canvas = np.broadcast_to(background, (side, side, 3)).copy()
    patch = canvas[top:top + size, left:left + size]
    canvas[top:top + size, left:left + size] = patch * (1 - alpha) + garment_rgb * alpha
    canvas += rng.normal(0, 6, canvas.shape)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")


def make_photo_task(root: Path, classes: dict[str, int] = CLASSES, per_class: int = 200, side: int = 112,
                    seed: int = 0, quality: int = 85, backdrop: str = "dark") -> Path:
    """Write `per_class` JPEG photos per class under `root/<class>/`; returns `root`."""
    root = Path(root)
    split = fashion_mnist.load_split("test")
    rng = np.random.default_rng(seed)
    for name, label in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, index in enumerate(np.flatnonzero(split.labels == label)[:per_class]):
            photo(split.images[index], rng, side, backdrop).save(folder / f"{i:03d}.jpg", quality=quality)
    return root
