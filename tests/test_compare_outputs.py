"""benchmarks/compare_outputs.py: what counts as the same output of two runs (the refactoring check)."""
from mobilenet_edge.benchmarks.compare_outputs import compare


def _run(root, summary: str, plot: bytes, html: str):
    (root / "plots").mkdir(parents=True)
    (root / "summary.json").write_text(summary)
    (root / "plots" / "size_per_format.png").write_bytes(plot)
    (root / "report.html").write_text(html)
    (root / "labels.txt").write_text("a\nb\n")
    return root


def test_a_plot_counts_as_equal_only_when_the_summary_it_is_drawn_from_is(tmp_path):
    old = _run(tmp_path / "old", '{"bytes": 1}', b"png-1", '<img src="data:image/png;base64,AAAA"> 2026-12-05 12:00 UTC')
    new = _run(tmp_path / "new", '{"bytes": 1}', b"png-2", '<img src="data:image/png;base64,BBBB"> 2026-12-05 12:09 UTC')
    verdicts = dict(compare(old, new))
    assert verdicts["plots/size_per_format.png"] == "drawn from summary.json, which is equal"
    assert verdicts["report.html"].startswith("identical") and verdicts["labels.txt"] == "identical"

    (new / "summary.json").write_text('{"bytes": 2}')
    verdicts = dict(compare(old, new))
    assert verdicts["summary.json"] == verdicts["plots/size_per_format.png"] == "DIFFERS"


def test_report_text_outside_the_images_still_counts(tmp_path):
    old = _run(tmp_path / "old", "{}", b"png", '<img src="data:image/png;base64,AAAA"> top-1 90.1 %')
    new = _run(tmp_path / "new", "{}", b"png", '<img src="data:image/png;base64,AAAA"> top-1 90.2 %')
    assert dict(compare(old, new))["report.html"] == "DIFFERS"
