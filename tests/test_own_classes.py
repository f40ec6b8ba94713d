"""The own-classes study's finding is read from its figures, and its docs block renders from the record."""
import json

from mobilenet_edge.benchmarks import own_classes_study, readme


def _task(probe, default, longer, reseeded=(), n=160):
    runs = [{"schedule": s, "seed": 0, "test_top1": t, "test_images": n, "final_train_accuracy": {"end_to_end": 0.9}}
            for s, t in zip(own_classes_study.SCHEDULES, (probe, default, longer))]
    runs += [{"schedule": s, "seed": 1, "test_top1": t, "test_images": n, "final_train_accuracy": {"end_to_end": 0.9}}
             for s, t in zip(own_classes_study.SCHEDULES[1:], reseeded)]
    return {"runs": runs}


def test_the_finding_names_what_limits_from_the_figures():
    shift = own_classes_study.finding(_task(0.60, 0.88, 0.885, reseeded=(0.86, 0.89)))
    assert "(domain shift)" in shift and "within the noise" in shift
    assert "higher at 2 of 2 seeds" in shift
    assert "run-to-run noise 2.0 pt (widest spread of one schedule over seeds)" in shift
    assert "'default x2' is best on average, by less than the noise" in shift
    budget = own_classes_study.finding(_task(0.87, 0.87, 0.95))
    assert "frozen features do as well" in budget and "the budget limits" in budget
    assert "'default x2' is best on average, by more than the noise" in budget
    assert "the default schedule is the best measured" in own_classes_study.finding(_task(0.87, 0.90, 0.88))


def test_the_block_is_the_committed_record_rendered():
    record = json.loads(own_classes_study.RECORD.read_text())
    assert readme.block_text("own-classes").rstrip("\n") == own_classes_study.table(record)
    for task in record["tasks"]:
        assert task["finding"] == own_classes_study.finding(task)  # derived, never typed
        assert {r["schedule"] for r in task["runs"]} == set(own_classes_study.SCHEDULES)
