#!/usr/bin/env python3
"""Own classes on photo-like images: what limits held-out top-1 — the domain shift, the budget or the schedule.

    python benchmarks/own_classes_study.py                  # both tasks, every schedule, writes the record
    python benchmarks/own_classes_study.py --task issue --parts DIR   # one task's runs into DIR/<task>.json
    python benchmarks/own_classes_study.py --assemble DIR   # the record from the parts in DIR
    python benchmarks/own_classes_study.py --from-record    # print the record's table (readme.py renders it)

Two folder tasks made by benchmarks/photo_task.py (dark garments on light, tinted backdrops: the reverse of
Fashion-MNIST's light-on-black; 120 px JPEGs; from the test split the reference checkpoint never saw):
  issue  — dress, coat, sandal, bag (the classes of issue 23, item 10);
  hard   — T-shirt, pullover, coat, shirt (upper-body garments that Fashion-MNIST models confuse most).
On each, MobileNet V1 alpha 0.25 at 64 px from the reference checkpoint (head replaced), same seed, same
images, three schedules (pipeline.train.small_data's settings otherwise):
  linear probe — backbone frozen throughout, only the new head trains (as many epochs as the default in all);
  default      — the head on a frozen backbone, then end to end at a lower rate (`make android TASK=<folder>`);
  default x2   — the same with twice the epochs of both phases.
Early stopping on the val split applies to all. If the probe is far below the default, the frozen features do
not fit the new pictures (domain shift) and fine-tuning is what closes the gap; if x2 is above the default by
more than the seed-to-seed noise (the default again with another seed), the budget limits.
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

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "own_classes.json"
ALPHA, RES, SIDE, PER_CLASS, QUALITY = 0.25, 64, 120, 200, 85
TASKS = {  # name -> folder name -> Fashion-MNIST label
    "issue": {"dress": 3, "coat": 4, "sandal": 5, "bag": 8},
    "hard": {"t-shirt": 0, "pullover": 2, "coat": 4, "shirt": 6},
}
SCHEDULES = ("linear probe", "default", "default x2")


def schedule_settings(task, name: str) -> dict:
    """TrainConfig settings of one schedule: the folder defaults (small_data), changed as `name` says."""
    from mobilenet_edge.pipeline.config import ANDROID_EPOCHS
    from mobilenet_edge.pipeline.train import small_data

    default = small_data(task, "reference", epochs=ANDROID_EPOCHS)
    if name == "linear probe":
        return default | {"linear_probe": True, "epochs": default["head_epochs"] + default["epochs"], "head_epochs": 0}
    if name == "default x2":
        return default | {"epochs": 2 * default["epochs"], "head_epochs": 2 * default["head_epochs"]}
    return default


def run(task_dir: Path, schedule: str, out: Path, seed: int = 0) -> dict:
    """Train once with `schedule`; held-out top-1, epochs, wall and CPU seconds, the machine's other load."""
    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.config import TrainConfig, Variant
    from mobilenet_edge.pipeline.sweep.executors import busy_cores
    from mobilenet_edge.pipeline.train import train

    task = resolve_task(str(task_dir))
    settings = schedule_settings(task, schedule) | {"seed": seed}
    busy = busy_cores()
    start, cpu = time.perf_counter(), time.process_time()
    result = train(Variant(ALPHA, RES, str(task_dir), "random"), task,
                   TrainConfig(resolution_sweep=False, bn_batches=20, **settings), out)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    record = json.loads(result.record.read_text())
    phases = record["phases"]
    return {"schedule": schedule, "seed": seed, "test_top1": round(result.test_top1, 4),
            "test_images": record["test_images"], "train_images": record["train_images"],
            "epochs_budget": {"frozen": settings["epochs"] if settings.get("linear_probe") else settings["head_epochs"],
                              "end_to_end": 0 if settings.get("linear_probe") else settings["epochs"]},
            "epochs_run": {"frozen": phases.get("head", {}).get("epochs", 0),
                           "end_to_end": phases.get("end_to_end", {}).get("epochs", 0)},
            "best_val_accuracy": {k: max(v.get("val_accuracy", [0])) for k, v in phases.items()},
            "final_train_accuracy": {k: v["train_accuracy"][-1] for k, v in phases.items()},
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "busy_cores_before": busy, "busy_cores_after": busy_cores(),
            "split": record["data_check"]["split"], "data_problems": record["data_check"]["problems"]}


def measure_task(name: str, workdir: Path, seeds: tuple[int, ...] = (0,)) -> dict:
    """Every schedule on task `name` (seed 0); the default and default x2 again with each further seed (the
    run-to-run noise)."""
    from mobilenet_edge.benchmarks.photo_task import make_photo_task
    from mobilenet_edge.calibration.folder_checks import check_folder

    task_dir = make_photo_task(workdir / name, TASKS[name], PER_CLASS, SIDE, 0, QUALITY, backdrop="light")
    runs = [run(task_dir, s, workdir / f"{name}-{i}") for i, s in enumerate(SCHEDULES) if 0 in seeds]
    runs += [run(task_dir, s, workdir / f"{name}-{s}-seed{seed}", seed) for seed in seeds if seed for s in SCHEDULES[1:]]
    return {"name": name, "classes": list(TASKS[name]), "per_class": PER_CLASS, "side": SIDE, "jpeg_quality": QUALITY,
            "backdrop": "light", "made_by": "benchmarks/photo_task.py (seed 0)",
            "content_sha256": check_folder(task_dir, RES).content_sha256, "runs": runs}


def finding(task: dict) -> str:
    """What limits top-1 on `task`, read from its runs (no figure typed by hand): schedules compared by their mean
    over seeds, against the run-to-run noise (the widest spread of one schedule's seeds, at least one image)."""
    seeds = {s: {r["seed"]: r["test_top1"] for r in task["runs"] if r["schedule"] == s} for s in SCHEDULES}
    mean = {s: float(np.mean(list(t.values()))) for s, t in seeds.items()}
    n = task["runs"][0]["test_images"]
    spreads = [max(t.values()) - min(t.values()) for t in seeds.values() if len(t) > 1]
    noise = max(spreads + [1 / n])
    counts = {s: len(t) for s, t in seeds.items()}
    parts = ["; ".join(f"{s} {100 * mean[s]:.1f} %" + (f" (mean of {counts[s]} seeds)" if counts[s] > 1 else "")
                       for s in SCHEDULES) + f" of {n} held-out images; run-to-run noise "
             f"{100 * noise:.1f} pt ({'widest spread of one schedule over seeds' if spreads else 'one test image'})"]
    gap_probe, gap_budget = mean["default"] - mean["linear probe"], mean["default x2"] - mean["default"]
    if gap_probe > noise:
        parts.append(f"fine-tuning adds {100 * gap_probe:.1f} pt over frozen features: the backbone's features do "
                     "not fit these pictures (domain shift), and the end-to-end phase is what adapts them")
    else:
        parts.append(f"frozen features do as well ({100 * -gap_probe:+.1f} pt): the shift is not what limits")
    paired = [seeds["default x2"][k] - seeds["default"][k] for k in seeds["default"] if k in seeds["default x2"]]
    wins = sum(d > 0 for d in paired)
    if gap_budget > noise:
        parts.append(f"twice the epochs adds {100 * gap_budget:.1f} pt: the budget limits")
    else:
        parts.append(f"twice the epochs changes {100 * gap_budget:+.1f} pt (higher at {wins} of {len(paired)} "
                     "seeds), within the noise: the budget limits little if at all")
    fitted = [r["final_train_accuracy"]["end_to_end"] for r in task["runs"] if r["schedule"] == "default x2"]
    if max(fitted) < 0.8:  # last epoch on augmented training images: a model that cannot fit them underfits
        parts.append(f"default x2 ends at {100 * min(fitted):.0f}-{100 * max(fitted):.0f} % on its own (augmented) "
                     "training images, near its held-out top-1: it underfits these classes (alpha 0.25 at 64 px) "
                     "rather than overfitting")
    best = max(mean, key=mean.get)
    parts.append("the default schedule is the best measured" if best == "default"
                 else f"'{best}' is best on average, by {'more' if mean[best] - mean['default'] > noise else 'less'}"
                      " than the noise")
    return "; ".join(parts) + "."


def assemble(parts: list[dict]) -> dict:
    import keras
    import tensorflow as tf

    tasks = [p | {"finding": finding(p)} for p in parts]
    return {"tasks": tasks, "finding": " ".join(f"{t['name']}: {t['finding']}" for t in tasks),
            "variant": {"arch": "v1", "alpha": ALPHA, "resolution": RES, "init": "reference"},
            "schedules": {s: schedule_settings_text(s) for s in SCHEDULES},
            "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                        "shared": "yes: other engineers' jobs ran at the same time (see busy_cores_*)"},
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
            "command": "python benchmarks/own_classes_study.py"}


def schedule_settings_text(name: str) -> str:
    return {"linear probe": "backbone frozen throughout; head trained for head + end-to-end epochs of the default",
            "default": "pipeline.train.small_data: head epochs on a frozen backbone, then end to end (ANDROID_EPOCHS)",
            "default x2": "the default with both phases' epochs doubled"}[name]


def table(record: dict) -> str:
    """The docs block: one row per task and schedule, then each task's finding."""
    lines = ["| task | schedule | held-out top-1 | epochs run (frozen + end to end) of budget | wall s | "
             "other load (cores) |", "|---|---|---|---|---|---|"]
    for t in record["tasks"]:
        for r in t["runs"]:
            name = r["schedule"] + (f" (seed {r['seed']})" if r["seed"] else "")
            run_, budget = r["epochs_run"], r["epochs_budget"]
            lines.append(f"| {t['name']}: {', '.join(t['classes'])} | {name} | {100 * r['test_top1']:.1f} % of "
                         f"{r['test_images']} | {run_['frozen']} + {run_['end_to_end']} of {budget['frozen']} + "
                         f"{budget['end_to_end']} | {r['wall_s']:.0f} | {r['busy_cores_before']} / "
                         f"{r['busy_cores_after']} |")
    t0, v = record["tasks"][0], record["variant"]
    lines += ["", f"{t0['per_class']} photos per class ({t0['side']} px JPEG, dark garments on light tinted "
                  f"backdrops), {t0['runs'][0]['train_images']} train / {t0['runs'][0]['test_images']} test images; "
                  f"MobileNet V1 {v['alpha']} at {v['resolution']} px from the reference checkpoint; "
                  f"{record['machine']['cores']} cores shared with other jobs. "
                  "From `benchmarks/records/own_classes.json` (`python benchmarks/own_classes_study.py`).", ""]
    lines += [f"- **{t['name']}**: {t['finding']}" for t in record["tasks"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from-record", action="store_true", help="measure nothing; print the record's table")
    p.add_argument("--task", choices=sorted(TASKS), help="measure one task only, into --parts")
    p.add_argument("--parts", type=Path, help="folder of per-task results (with --task)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the default (beyond 0: the noise)")
    p.add_argument("--assemble", type=Path, help="write the record from the per-task results in this folder")
    args = p.parse_args(argv)
    from mobilenet_edge.pipeline.artifacts import write_json

    if args.task:  # runs of seeds a part already holds are kept; the others are added (more seeds later)
        part = args.parts / f"{args.task}.json"
        done = json.loads(part.read_text()) if part.exists() else None
        seeds = tuple(s for s in args.seeds if not done or s not in {r["seed"] for r in done["runs"]})
        new = measure_task(args.task, Path(tempfile.mkdtemp(prefix="own-classes-")), seeds)
        if done and done["content_sha256"] != new["content_sha256"]:
            raise SystemExit(f"expected the images of {part}, received others")
        write_json(part, new | {"runs": (done["runs"] if done else []) + new["runs"]})
        return 0
    if args.assemble:
        write_json(RECORD, assemble([json.loads((args.assemble / f"{n}.json").read_text()) for n in TASKS]))
    elif not args.from_record:
        work = Path(tempfile.mkdtemp(prefix="own-classes-"))
        write_json(RECORD, assemble([measure_task(n, work, tuple(args.seeds)) for n in TASKS]))
    print("now regenerate the tables: python benchmarks/readme.py")
    print(table(json.loads(RECORD.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
