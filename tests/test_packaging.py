"""What a user installs: every module of the source tree, the typing marker, the command and its version."""

import importlib.metadata
import pathlib
import subprocess
import sys

import pytest

import jukebox_fast

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Where each package's sources lie in the tree (pyproject.toml's package-dir).
SOURCES = {"jukebox_fast": ROOT / "src" / "jukebox_fast", "jukebox_fast/kernels": ROOT / "kernels"}


def source_modules():
    """Paths of every .py file of the source tree, relative to the installed package's parent."""
    if not all(folder.is_dir() for folder in SOURCES.values()):
        pytest.skip("not run from a source tree")
    return sorted(
        f"{package}/{path.relative_to(folder).as_posix()}"
        for package, folder in SOURCES.items()
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts
    )


def test_every_source_module_is_installed():
    installed = pathlib.Path(jukebox_fast.__file__).resolve().parent.parent
    missing = [name for name in source_modules() if not (installed / name).is_file()]
    assert not missing, f"the installed package at {installed} lacks {missing}: list the package in pyproject.toml"


def test_typing_marker_is_installed():
    assert (pathlib.Path(jukebox_fast.__file__).parent / "py.typed").is_file()


def test_version_matches_the_metadata(cli):
    version = importlib.metadata.version("jukebox_fast")
    assert jukebox_fast.__version__ == version
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"jukebox_fast {version}"


def test_console_script_runs_the_example(tmp_path):
    script = pathlib.Path(sys.executable).with_name("jukebox-fast")
    if not script.is_file():
        pytest.skip("the jukebox-fast script is not installed beside this python")
    result = subprocess.run([script, "run", "--example", "-q", "-k", "5"], capture_output=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines and all(len(line.split()) == 6 for line in lines)
    help_text = subprocess.run([script, "run", "--help"], capture_output=True, timeout=60).stdout.decode()
    assert help_text.startswith("usage: jukebox-fast run")


def test_help_names_the_module_form(cli):
    assert cli("run", "--help").stdout.decode().startswith("usage: python -m jukebox_fast run")
