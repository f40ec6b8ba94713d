"""The README's measured figures are the committed records' figures (benchmarks/readme.py)."""
from mobilenet_edge.benchmarks import readme


def test_readme_blocks_equal_what_their_records_generate(capsys):
    assert readme.main(["--check"]) == 0, capsys.readouterr().out


def test_a_figure_typed_by_hand_is_caught(tmp_path, capsys):
    text = readme.README.read_text()
    start = text.index("<!-- begin:checkpoints -->")
    tampered = text[:start] + text[start:].replace(" MB |", "0 MB |", 1)
    copy = tmp_path / "README.md"
    copy.write_text(tampered)
    assert readme.main(["--check", "--readme", str(copy)]) == 1
    assert "'checkpoints' differs" in capsys.readouterr().out
    assert readme.main(["--readme", str(copy)]) == 0 and copy.read_text() == text
