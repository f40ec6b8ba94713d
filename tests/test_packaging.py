"""The installed layout: one import package of the project's own name, every package listed, no import circle."""
import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("pipeline", "calibration", "targets", "benchmarks")
PACKAGE = "mobilenet_edge"


def _project_modules() -> dict[str, Path]:
    return {".".join((PACKAGE, *p.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__"): p
            for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}


def test_every_package_folder_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join((PACKAGE, *p.parent.relative_to(ROOT).parts))
               for folder in FOLDERS for p in (ROOT / folder).rglob("__init__.py")}
    data = {name for name in config["package-data"] if name not in folders}  # data folders, no __init__.py
    assert folders | data == set(config["packages"])
    for name in data:
        assert (ROOT / Path(*name.split(".")[1:])).is_dir(), name
    assert config["package-dir"] == {f"{PACKAGE}.{f}": f for f in FOLDERS}


def test_no_module_imports_a_generic_top_level_name():
    """`import pipeline` would work only from the repository root, and would shadow a user's own package."""
    wrong = []
    for name, path in _project_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            wrong += [f"{name}: {m}" for m in mods if m.split(".")[0] in FOLDERS]
    assert not wrong


def test_no_import_circle():
    """No module imports one that imports it back, directly or through others (lazy imports count)."""
    modules = _project_modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module, *(f"{node.module}.{a.name}" for a in node.names)] \
                if isinstance(node, ast.ImportFrom) and node.module else []
            for t in targets:
                owner = max((m for m in modules if t == m or t.startswith(m + ".")), key=len, default=None)
                if owner and owner != name and not name.startswith(owner + "."):  # a package's own __init__
                    deps.add(owner)
        graph[name] = deps

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    assert not [name for name in graph if reaches(name, name, set())]


@pytest.mark.slow
def test_the_wheel_installs_only_the_project_name(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {PACKAGE}
    for data in ("pipeline/checkpoints/fashion-mnist/mobilenet_0.25_64.weights.h5", "calibration/imagenet_class_index.json",
                 "calibration/data/fashion-mnist/t10k-images-idx3-ubyte.gz", "targets/profiles/raspberry-pi-4.toml",
                 "targets/pi_emulator/pi-emulator.sh", "benchmarks/runner.py",
                 "pipeline/convert/metadata/schema/metadata_schema.fbs"):
        assert f"{PACKAGE}/{data}" in names, data
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert f"mobilenet-edge = {PACKAGE}.pipeline.cli:main" in entry
