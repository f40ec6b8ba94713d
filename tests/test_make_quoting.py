"""Make variables are data, never shell: each reaches the CLI as one argument, and `make clean` deletes exactly
OUT — and only a folder the pipeline created. Real make, real CLI; the CLI's own one-line error (which quotes
the value it received) is the observable. Each case takes about a second (one CLI start, no TensorFlow)."""
from __future__ import annotations

import os
import subprocess

import pytest

from conftest import ROOT
from mobilenet_edge.pipeline.clean import MARKER, claim_output, clean_output
from mobilenet_edge.pipeline.errors import PipelineError


def make(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-s", "-C", str(ROOT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def error_of(proc: subprocess.CompletedProcess) -> str:
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


# (target, variable, the CLI's error, which quotes the value as it received it: "{v}" is the payload)
CASES = [
    ("cost", "ALPHA", "received alpha={v!r}"),
    ("cost", "RES", "received RES={v!r}"),
    ("cost", "ARCH", "received ARCH={v!r}"),
    ("bench-remote", "PORT", "expected --port to be a whole number, received {v!r}"),
    ("validate", "ALPHA", "received alpha={v!r}"),
    ("sweep", "WORKERS", "received WORKERS={v!r}"),
    ("predict", "TOP", "expected --top to be a whole number, received {v!r}"),
    ("bench", "THREADS", "expected --threads to be a whole number, received {v!r}"),
]
PAYLOADS = ["1; touch {p}", "$(touch {p})", "`touch {p}`", "$(shell touch {p})", "1 && touch {p} #", "'\"; touch {p}"]


@pytest.mark.parametrize("target, var, expected", CASES, ids=[f"{t}-{v}" for t, v, _ in CASES])
def test_injected_shell_runs_nothing_and_arrives_as_one_argument(tmp_path, target, var, expected):
    pwned = tmp_path / "pwned"
    for payload in PAYLOADS if (target, var) == ("cost", "ALPHA") else PAYLOADS[:2]:
        value = payload.format(p=pwned)
        proc = make(target, f"{var}={value}", "TASK=fashion-mnist", f"OUT={tmp_path / 'out'}")
        assert proc.returncode != 0
        assert expected.format(v=value) in error_of(proc), (value, proc.stderr[-1000:])
        assert not pwned.exists(), f"{var}={value} ran a command"


def test_host_with_shell_reaches_the_cli_as_one_argument(tmp_path):
    """HOST is passed as it is; the missing variant folder is the first thing the CLI complains about."""
    pwned = tmp_path / "pwned"
    proc = make("bench-remote", f"HOST=$(touch {pwned})`touch {pwned}`", f"OUT={tmp_path / 'my out'}")
    assert "expected a variant folder, received " in error_of(proc)
    assert str(tmp_path / "my out") in error_of(proc) and not pwned.exists()


def test_clean_deletes_exactly_out_with_spaces_and_non_ascii(tmp_path):
    out = tmp_path / "scratch" / "my dïr"
    claim_output(out)
    (out / "fashion-mnist").mkdir()
    neighbours = [tmp_path / "scratch" / "my", tmp_path / "dïr", tmp_path / "scratch" / "my dïr2"]
    for folder in neighbours:
        folder.mkdir(parents=True)
        (folder / "keep.txt").write_text("not the pipeline's")
    proc = make("clean", f"OUT={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not out.exists() and all((f / "keep.txt").is_file() for f in neighbours)
    assert make("clean", f"OUT={out}").returncode == 0  # nothing left: nothing to do


@pytest.mark.parametrize("out", ["/", "~", "{root}", "{root}/..", "{home}/..", "."])
def test_clean_refuses_root_home_and_the_repository(out):
    value = out.format(root=ROOT, home=os.path.expanduser("~"))
    proc = make("clean", f"OUT={value}")
    assert proc.returncode != 0 and "nothing was deleted" in error_of(proc)
    assert (ROOT / "Makefile").is_file()


def test_clean_refuses_a_folder_the_pipeline_did_not_create(tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"x")
    claim_output(mine)  # not empty: the pipeline does not claim it
    assert not (mine / MARKER).exists()
    proc = make("clean", f"OUT={mine}")
    assert f"it holds {MARKER}" in error_of(proc) and (mine / "cat.jpg").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(PipelineError, match="expected OUT to be a folder, received .* a file"):
        clean_output(tmp_path / "file")
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(PipelineError, match="a symbolic link"):
        clean_output(link)
    assert (mine / "cat.jpg").is_file()


def test_claim_output_marks_a_new_or_empty_folder(tmp_path):
    claim_output(tmp_path / "new" / "out")
    assert (tmp_path / "new" / "out" / MARKER).is_file()
    (tmp_path / "empty").mkdir()
    claim_output(tmp_path / "empty")
    assert (tmp_path / "empty" / MARKER).is_file()
