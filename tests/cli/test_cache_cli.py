"""The command line through the configuration cache: the same output the first time and the next, errors never kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main

TESTS = Path(__file__).resolve().parents[1]
BASIC = TESTS / "fixtures" / "basic"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv("QAFLOW_CACHE_DIR", str(where))
    monkeypatch.delenv("QAFLOW_CACHE", raising=False)
    return where


def run(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_validate_says_the_same_from_the_cache(folder, fmt):
    first = run("--config", str(BASIC), "--format", fmt, "validate")
    assert sorted(p.name.split("-")[0] for p in folder.glob("*.json")) == ["config", "holidays", "validate"]
    assert run("--config", str(BASIC), "--format", fmt, "validate") == first
    assert first[0] == 0 and "unused-trigger" in first[1]


def test_errors_are_reported_every_time_and_never_kept(folder, tmp_path):
    config = Path(shutil.copytree(BASIC, tmp_path / "config"))
    review = config / "workflows" / "review.yaml"
    review.write_text(review.read_text().replace("initial: true", "initial: sure", 1))
    first = run("--config", str(config), "validate")
    assert first[0] == 1 and ": error: " in first[1]
    assert run("--config", str(config), "validate") == first
    assert run("--config", str(config), "diagram", "review")[0] == 1
    assert not list(folder.glob("config-*.json")) and not list(folder.glob("validate-*.json"))


def test_commands_that_load_the_configuration_print_its_warnings_from_the_cache(folder):
    first = run("--config", str(BASIC), "diagram", "review")
    second = run("--config", str(BASIC), "diagram", "review")
    assert first == second and first[0] == 0
    assert "open-start" in first[2]


def test_qaflow_cache_0(folder, monkeypatch):
    monkeypatch.setenv("QAFLOW_CACHE", "0")
    assert run("--config", str(BASIC), "validate")[0] == 0
    assert run("--config", str(BASIC), "diagram", "review")[0] == 0
    assert not folder.exists()
