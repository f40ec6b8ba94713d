#!/usr/bin/env python3
"""Transfer vs. from scratch on a folder of photos: what the reference backbone buys in the same budget.

    python benchmarks/transfer_bench.py              # makes the task, trains both ways, writes the record
    python benchmarks/transfer_bench.py --from-record   # print the record's table (benchmarks/readme.py renders it)

The task (benchmarks/photo_task.py): 3 Fashion-MNIST classes x 200 JPEG "photos" (112 px, coloured garments
on tinted backdrops, from the test split the reference checkpoints never trained on), made deterministically.
Both runs train MobileNet V1 alpha 0.25 at 64 px with the same settings (pipeline.train.small_data) and the
same number of epochs: one from the committed Fashion-MNIST checkpoint (its 10-class head replaced, the
backbone frozen for the first epochs), one from random weights. Held-out top-1 is on the task's test split.
The machine is shared: wall and CPU seconds are recorded with how busy it was (cores' worth of other
programs' CPU use, one-second samples before and after).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "transfer.json"
README = ROOT / "README.md"
BLOCK = "transfer"
ALPHA, RES, EPOCHS = 0.25, 64, 15
TARGET_TOP1, BUDGET_S = 0.95, 180


def run(task_dir: Path, init: str, out: Path) -> dict:
    """Train once; the record's figures plus wall and CPU seconds of the whole stage."""
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.config import Variant
    from mobilenet_edge.pipeline.sweep.executors import busy_cores
    from mobilenet_edge.pipeline.train import small_data, train
    from mobilenet_edge.pipeline.config import TrainConfig

    task = resolve_task(str(task_dir))
    settings = small_data(task, init)
    # The same budget: from scratch gets the transfer run's head epochs as ordinary epochs.
    epochs = EPOCHS + (0 if init != "random" else small_data(task, "reference")["head_epochs"])
    busy = busy_cores()
    start, cpu = time.perf_counter(), time.process_time()
    result = train(Variant(ALPHA, RES, str(task_dir), "random"), task,
                   TrainConfig(epochs=epochs, resolution_sweep=False, bn_batches=20, **settings), out)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    record = json.loads(result.record.read_text())
    return {"init": init, "test_top1": round(result.test_top1, 4), "test_images": record["test_images"],
            "train_images": record["train_images"], "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "busy_cores_before": busy, "busy_cores_after": busy_cores(),
            "epochs_run": {k: v["epochs"] for k, v in record["phases"].items()}, "phases": record["phases"],
            "transfer": {k: record["transfer"][k] for k in ("init", "source", "head_replaced", "kept_layers",
                                                            "new_layers")},
            "config": record["config"], "split": record["data_check"]["split"],
            "data_problems": record["data_check"]["problems"]}


def measure() -> dict:
    from mobilenet_edge.benchmarks.photo_task import CLASSES, make_photo_task
    from mobilenet_edge.calibration.folder_checks import check_folder

    import keras
    import tensorflow as tf

    root = Path(tempfile.mkdtemp(prefix="transfer-bench-"))
    task_dir = make_photo_task(root / "photos")
    runs = [run(task_dir, init, root / init) for init in ("reference", "random")]
    return {
        "task": {"classes": list(CLASSES), "per_class": 200, "side": 112, "jpeg_quality": 85, "seed": 0,
                 "made_by": "benchmarks/photo_task.py", "content_sha256": check_folder(task_dir, RES).content_sha256},
        "variant": {"arch": "v1", "alpha": ALPHA, "resolution": RES},
        "target": {"test_top1": TARGET_TOP1, "wall_s": BUDGET_S},
        "runs": runs,
        "passed": runs[0]["test_top1"] >= TARGET_TOP1 and runs[0]["wall_s"] < BUDGET_S,
        "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "shared": "yes: 4 other engineers' jobs ran at the same time (see busy_cores_*)"},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
        "command": "python benchmarks/transfer_bench.py",
    }


def table(record: dict) -> str:
    """The README block: both runs of the record, one row each."""
    names = {"reference": "transfer from the Fashion-MNIST checkpoint (head replaced)", "random": "from scratch"}
    lines = ["| start | held-out top-1 | epochs (frozen + end to end) | wall s | CPU s | other load (cores) |",
             "|---|---|---|---|---|---|"]
    for r in record["runs"]:
        epochs = r["epochs_run"]
        run_epochs = f"{epochs.get('head', 0)} + {epochs['end_to_end']}"
        lines.append(f"| {names.get(r['init'], r['init'])} | {100 * r['test_top1']:.1f} % of {r['test_images']} "
                     f"| {run_epochs} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} "
                     f"| {r['busy_cores_before']} / {r['busy_cores_after']} |")
    t = record["task"]
    lines += ["", f"{len(t['classes'])} classes ({', '.join(t['classes'])}) x {t['per_class']} photos of "
                  f"{t['side']} px, MobileNet V1 {record['variant']['alpha']} at {record['variant']['resolution']} px, "
                  f"{record['machine']['cores']} cores shared with other jobs (other load sampled before / after "
                  f"each run). Target: >= {100 * record['target']['test_top1']:.0f} % in under "
                  f"{record['target']['wall_s']} s: {'met' if record['passed'] else 'NOT met'}. "
                  "From `benchmarks/records/transfer.json` (`python benchmarks/transfer_bench.py`)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from-record", action="store_true", help="measure nothing; print the table of the record")
    args = p.parse_args(argv)
    if not args.from_record:
        from mobilenet_edge.pipeline.artifacts import write_json

        write_json(RECORD, measure())
    record = json.loads(RECORD.read_text())
    print("now regenerate the tables: python benchmarks/readme.py")
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
