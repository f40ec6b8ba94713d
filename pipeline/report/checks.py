"""The report's check of every row against the file on disk.

The manifest, validation.json and benchmark-*.json say what was measured on which file (by sha256); the files
themselves may since have been deleted, emptied or replaced (an interrupted re-export, a hand edit). A row the
report shows is current only when its file exists, is not empty and has the sha256 its manifest entry names;
a measurement counts only when it was made on that same sha256. Anything else is shown as missing, changed or
stale, listed under "Problems", and never recommended.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import sha256_file

OK = "ok"
NOTES = {"missing": "missing on disk", "empty": "empty file on disk",
         "changed": "changed on disk since its manifest entry"}


@dataclass(frozen=True)
class OnDisk:
    """One manifest entry's file as it is now."""

    status: str  # ok | missing | empty | changed
    sha256: str | None  # the file's sha256 now (None: no file)
    bytes: int | None  # its size (when ok: the manifest's figure, the same file by its sha256)


def on_disk(folder: Path, entry: dict) -> OnDisk:
    path = Path(folder) / str(entry.get("file"))
    if not path.is_file():
        return OnDisk("missing", None, None)
    size = path.stat().st_size
    if size == 0:
        return OnDisk("empty", None, 0)
    sha = sha256_file(path)
    if sha != entry.get("sha256"):
        return OnDisk("changed", sha, size)
    return OnDisk(OK, sha, entry.get("bytes", size))


def measured_on(result: dict, disk: OnDisk) -> bool:
    """Whether a validation row or benchmark result was measured on the file as it is now.

    Results written before results named their sha256 are matched by size, the only record they have."""
    if disk.status != OK:
        return False
    if result.get("sha256"):
        return result["sha256"] == disk.sha256
    return result.get("bytes") is None or result.get("bytes") == disk.bytes


def problem(folder: Path, file: str, what: str) -> str:
    return f"{Path(folder).parent.name}/{Path(folder).name}/{file}: {what}"


def verified(folder: Path, manifest: dict, validated: dict, problems: list) -> list[tuple[dict, dict, OnDisk]]:
    """(manifest entry, its validation row, its file now) per entry the manifest lists; the row is {} when it
    was measured on another file. What does not hold is appended to `problems`. The manifest is the truth about
    the folder: a validation row of a file it does not list is not returned."""
    entries = [dict(a) for a in manifest.get("artifacts", []) if isinstance(a, dict)]
    for file in sorted(set(validated) - {e.get("file") for e in entries}):
        problems.append(problem(folder, file, "validated, but not in manifest.json (not shown)"))
    out = []
    for entry in entries:
        now = on_disk(folder, entry)
        check = validated.get(entry.get("file"), {})
        if now.status != OK:
            problems.append(problem(folder, entry.get("file"), NOTES[now.status] + " (not recommended)"))
        if check and not measured_on(check, now):
            if now.status == OK:
                problems.append(problem(folder, entry.get("file"), "validation.json measured another file (stale, "
                                                                   "not shown); run make validate"))
            check = {}
        out.append((entry, check, now))
    return out
