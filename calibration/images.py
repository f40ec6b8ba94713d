"""Reading user image folders: any common format and mode, EXIF orientation applied."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def find_images(folder: str | Path) -> list[Path]:
    """All image files under `folder` (recursive), sorted so that seeded sampling is reproducible."""
    root = Path(folder)
    if not root.exists():
        raise PipelineError(f"expected an image folder, received {str(root)!r}, which does not exist")
    if not root.is_dir():
        raise PipelineError(f"expected an image folder, received {str(root)!r}, which is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise PipelineError(
            f"expected image files ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}, received none"
        )
    return files


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F) -> 8-bit RGB, orientation from EXIF applied."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / 32-bit greyscale: rescale the full range to 8 bits instead of clipping at 255.
        arr = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        image = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite transparency on white, as an image viewer would show it.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """Open and decode one image; raises PipelineError if it cannot be decoded."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb(im)
    except Exception as exc:  # PIL raises many types for corrupt data
        raise PipelineError(f"expected a decodable image, received {str(path)!r} ({type(exc).__name__}: {exc})") from None
