"""Real calibration images from the internet, only when asked: a pinned archive, checked by sha256, cached.

`CALIB_URL=<.tar.gz | .tgz | .tar | .zip of images> CALIB_SHA256=<hex>` downloads the archive once into the
cache folder (~/.cache/mobilenet-edge/calibration/<sha256>/), refuses it when its sha256 differs, unpacks it
and hands the folder to the ordinary CALIB path. Nothing is downloaded without both values, and a cached
archive is never fetched again (offline runs keep working).
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from mobilenet_edge.calibration.synthetic import default_cache_dir
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

TIMEOUT_S = 30
DONE = ".complete"  # written last: a folder without it is an interrupted unpack and is made again


def _download(url: str, dest: Path, progress: bool) -> str:
    """Stream `url` into `dest`; return its sha256."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(dest, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="calibration download", disable=not progress,
                      leave=False) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    f.write(block)
                    h.update(block)
                    bar.update(len(block))
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts and bad URLs
        raise PipelineError(f"expected to download calibration images from {url}, received "
                            f"{type(exc).__name__}: {exc}") from None
    return h.hexdigest()


def _unpack(archive: Path, into: Path, url: str) -> None:
    name = url.split("?")[0].lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                outside = [m for m in z.namelist() if m.startswith(("/", "\\")) or ".." in Path(m).parts]
                if outside:  # zipfile would quietly rewrite these names; an archive that has them is not one of images
                    raise PipelineError(f"expected an archive whose files stay inside it, received {url} with "
                                        f"{outside[0]!r}; nothing was kept")
                z.extractall(into)
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as t:
                t.extractall(into, filter="data")  # no absolute paths, links out of the folder or devices
        else:
            raise PipelineError(f"expected a .tar.gz, .tgz, .tar or .zip archive of images, received {url}")
    except (tarfile.TarError, zipfile.BadZipFile) as exc:  # FilterError: a path out of the folder, a link, a device
        raise PipelineError(f"expected an archive of images whose files stay inside it, received {url} "
                            f"({type(exc).__name__}: {exc}); nothing was kept") from None


def fetch_calibration(url: str, sha256: str, cache_dir: Path | None = None, progress: bool = True) -> Path:
    """The unpacked image folder of the archive at `url` whose sha256 must be `sha256` (downloaded once)."""
    sha256 = (sha256 or "").strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise PipelineError(f"expected CALIB_SHA256 to be the archive's 64-hex-digit sha256, received {sha256!r}")
    root = Path(cache_dir or default_cache_dir()) / "calibration"
    folder = root / sha256
    if (folder / DONE).is_file():
        log.info("calibration images from the cache: %s", folder)
        return folder
    root.mkdir(parents=True, exist_ok=True)
    log.warning("downloading calibration images from %s (asked for by CALIB_URL)", url)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as scratch:
        archive = Path(scratch) / "archive"
        got = _download(url, archive, progress)
        if got != sha256:
            raise PipelineError(f"expected sha256 {sha256} for {url}, received {got}; nothing was kept")
        unpacked = Path(scratch) / "images"
        _unpack(archive, unpacked, url)
        (unpacked / DONE).write_text(url + "\n")
        shutil.rmtree(folder, ignore_errors=True)  # an interrupted earlier unpack
        unpacked.rename(folder)
    return folder
