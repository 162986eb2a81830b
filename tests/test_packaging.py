"""A non-editable install ships the bundled configuration and schemas inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_engine_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.relative_to(ROOT).parent.parts)
        for p in (ROOT / "engine").rglob("__init__.py")
    }
    assert on_disk | {"engine.bundled"} == listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("qaflow-*.whl")
    return path


def test_wheel_contains_config_and_schemas(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "engine/py.typed" in names  # type checkers read the package's own annotations
    shipped = {n for n in names if n.startswith("engine/bundled/")}
    expected = {
        f"engine/bundled/{p.relative_to(ROOT / 'config').as_posix()}"
        for p in (ROOT / "config").rglob("*")
        if p.suffix in (".yaml", ".json")
    }
    assert expected and expected <= shipped


def test_installed_copy_loads_its_bundled_config_from_anywhere(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import engine; from engine import bundled_config_dir, load_config;"
        f"d = bundled_config_dir(); assert str(d).startswith({str(target)!r}), d;"
        "print(len(load_config(d).workflows))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 1


def test_sdist_carries_the_tests_and_licence_and_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Deprecat" not in output and "warning" not in output.lower(), output
    (sdist,) = tmp_path.glob("qaflow-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "tests/test_packaging.py", "tests/store/start_postgres.sh", "docs/workflow-language.md"} <= names
    assert not [n for n in names if "__pycache__" in n]
    assert "PKG-INFO" in names


def test_licence_metadata_uses_an_spdx_expression():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
