"""`make clean`: delete OUT, and only a folder that the pipeline created.

The pipeline claims an output folder it creates (or finds empty) with a marker file; `clean` deletes a folder
only when it holds that marker, and never `/`, the home folder, the repository or a folder that contains any
of them — so a mistyped OUT (`OUT=~`, `OUT=..`, `OUT="my dir"` split in two) cannot take other files with it.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import write_text
from mobilenet_edge.pipeline.errors import PipelineError, system_error

log = logging.getLogger(__name__)

MARKER = ".mobilenet_edge"
REPO = Path(__file__).resolve().parents[1]


def claim_output(out: Path) -> None:
    """Mark OUT as the pipeline's when it does not exist yet or is empty (a folder of the user's stays unmarked)."""
    out = Path(out)
    if (out / MARKER).is_file():
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / MARKER, "Created by mobilenet-edge; `make clean OUT=<this folder>` may delete it.\n")
    except OSError as exc:
        refused = system_error(exc, out)
        if refused is not None:  # read-only, full, not permitted: the system's, exit 1
            raise refused from None
        raise PipelineError(f"expected a writable output folder, received OUT={out} ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class CleanResult:
    path: Path
    removed: bool  # False: there was nothing to remove


def _protected() -> list[Path]:
    return [Path("/"), Path.home().resolve(), REPO, Path.cwd().resolve()]


def clean_output(out: Path) -> CleanResult:
    """Delete the folder `out` if the pipeline created it (see the module doc); raises PipelineError otherwise."""
    out = Path(out).expanduser()
    if not out.exists() and not out.is_symlink():
        return CleanResult(out, False)
    if out.is_symlink() or not out.is_dir():
        raise PipelineError(f"expected OUT to be a folder, received {str(out)!r}, which is "
                            f"{'a symbolic link' if out.is_symlink() else 'a file'}; nothing was deleted")
    real = out.resolve()
    for keep in _protected():
        if real == keep or keep.is_relative_to(real):
            raise PipelineError(f"expected OUT to be an output folder of its own, received {str(out)!r}, which is "
                                f"or contains {keep}; nothing was deleted")
    if not (real / MARKER).is_file():
        raise PipelineError(f"expected OUT to be a folder the pipeline created (it holds {MARKER}), received "
                            f"{str(out)!r} without it; nothing was deleted (delete it yourself if it is yours)")
    shutil.rmtree(real)
    return CleanResult(out, True)
