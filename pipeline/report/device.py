"""The report's device-validation part: validation-<target>.json (pipeline.validate.device) beside this machine's.

`attach` adds to each artifact record `device_validation` {target: figures}; `device_cell` is the artifact
table's host-vs-device cell; `device_blocks` the section listing each target, its runtimes and the artifacts
whose device result differs from this machine's.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from mobilenet_edge.pipeline.report.text import DASH, pct

log = logging.getLogger(__name__)

NOTE = ("device top-1: the same held-out images run by the standalone runner on that device; \"= here\" means "
        "every top-1 prediction and every output (within one output quantization step, float: 1e-4) equals this "
        "machine's run of the same file, \"DIFFERS\" shows the top-1 agreement with this machine's run.")


def attach(folder: Path, manifest: dict, by_file: dict, problems: list, targets: list) -> None:
    """Read the folder's validation-*.json into the records `by_file` (file name -> record); new target names
    are appended to `targets`. A row measured on another version of the file (sha256) is left out."""
    current = {a.get("file"): a.get("sha256") for a in manifest.get("artifacts", [])}
    for path in sorted(Path(folder).glob("validation-*.json")):
        try:
            doc = json.loads(path.read_text())
            rows, target = doc["artifacts"], doc["target"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("report: cannot read %s: %s", path, exc)
            problems.append(f"{path}: unreadable ({str(exc)[:120]})")
            continue
        if target not in targets:
            targets.append(target)
        for row in rows:
            record = by_file.get(row.get("file"))
            if record is None or current.get(row.get("file")) != row.get("sha256"):
                continue
            record.setdefault("device_validation", {})[target] = {
                "top1": row["device"]["top1"], "host_top1": row["host"]["top1"],
                "top1_agreement_host": row["top1_agreement_host"],
                "top1_agreement_float": row["device"]["top1_agreement_float"],
                "max_abs_diff_host": row["max_abs_diff_host"], "differs": row["differs"],
                "runtime": _runtime(row["device"]["runtime"]), "host_runtime": _runtime(row["host"]["runtime"]),
                "machine": (doc.get("device") or {}).get("machine"), "images": row.get("images")}


def _runtime(r: dict) -> str:
    return f"{r.get('name')} {r.get('version') or ''}".strip() + (f" + {r['delegate']}" if r.get("delegate") else "")


def device_cell(record: dict, target: str) -> str:
    """'90.10 = here', or '89.90 DIFFERS (agree 99.2 %)'; a dash when the artifact was not run there."""
    d = (record.get("device_validation") or {}).get(target)
    if d is None:
        return DASH
    if not d["differs"]:
        return f"{pct(d['top1'])} = here" if d["top1"] is not None else "= here"
    return f"{pct(d['top1'])} DIFFERS (agree {pct(d['top1_agreement_host'])} %)"


def device_blocks(summary: dict) -> list[tuple]:
    """One table per device target: every artifact validated there, this machine beside the device."""
    targets = summary.get("device_targets") or []
    if not targets:
        return []
    blocks = [("h2", "Device validation: this machine vs. the device"), ("meta", NOTE)]
    for target in targets:
        rows, flagged = [], []
        for r in summary["records"]:
            d = (r.get("device_validation") or {}).get(target)
            if d is None:
                continue
            rows.append({"cells": [f"{r['variant']} {r['label']}", pct(d["host_top1"]), pct(d["top1"]),
                                   pct(d["top1_agreement_host"]), pct(d["top1_agreement_float"]),
                                   f"{d['max_abs_diff_host']:.2g}", d["host_runtime"], d["runtime"],
                                   "DIFFERS" if d["differs"] else "same"],
                         "title": r["file"], "cls": "bad" if d["differs"] else ""})
            if d["differs"]:
                flagged.append(f"{r['variant']}/{r['file']}")
        machine = next((d["machine"] for r in summary["records"]
                        for t, d in (r.get("device_validation") or {}).items() if t == target), None)
        header = ["artifact", "top-1 % here", "top-1 % device", "agree here %", "agree float %", "max |Δ|",
                  "runtime here", "runtime device", "result"]
        blocks += [("h3", f"{target} ({machine or 'unknown machine'})"), ("table", header, rows),
                   ("status", f"{len(flagged)} artifact(s) differ on {target}: {', '.join(flagged)}" if flagged
                    else f"Every artifact gives this machine's results on {target}.", bool(flagged))]
    return blocks
