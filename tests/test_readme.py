"""The README's measured figures are the committed records' figures (benchmarks/readme.py)."""
from mobilenet_edge.benchmarks import readme


def test_readme_blocks_equal_what_their_records_generate(capsys):
    assert readme.main(["--check"]) == 0, capsys.readouterr().out


def test_a_figure_typed_by_hand_is_caught(tmp_path, monkeypatch, capsys):
    (tmp_path / "docs").mkdir()
    for path in readme.documents():
        (tmp_path / path.relative_to(readme.ROOT)).write_text(path.read_text())
    monkeypatch.setattr(readme, "README", tmp_path / "README.md")
    monkeypatch.setattr(readme, "DOCS", tmp_path / "docs")
    text = readme.README.read_text()
    start = text.index("<!-- begin:checkpoints -->")
    readme.README.write_text(text[:start] + text[start:].replace(" MB |", "0 MB |", 1))
    assert readme.main(["--check"]) == 1
    assert "'checkpoints' differs" in capsys.readouterr().out
    assert readme.main([]) == 0 and readme.README.read_text() == text


def test_a_block_stated_twice_or_missing_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "docs").mkdir()
    monkeypatch.setattr(readme, "README", tmp_path / "README.md")
    monkeypatch.setattr(readme, "DOCS", tmp_path / "docs")
    readme.README.write_text(readme.ROOT.joinpath("README.md").read_text())
    assert readme.main(["--check"]) == 2
    assert "missing:" in capsys.readouterr().err
