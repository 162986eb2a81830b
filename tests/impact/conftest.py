"""Fixtures for the impact tests: a changed copy of the bundled configuration, and the hand-dated world of tests/reports."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
sys.path.insert(0, str(ROOT / "tests" / "reports"))  # report_world: the hand-dated October 2026


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there exactly once) by ``new`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def changed_config(tmp_path) -> Callable[..., Path]:
    """A copy of the bundled configuration with edits: ``changed_config(("workflows/x.yaml", old, new), ...)``."""

    def make(*edits: tuple[str, str, str]) -> Path:
        folder = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}"
        shutil.copytree(CONFIG, folder)
        for file, old, new in edits:
            edit(folder / file, old, new)
        return folder

    return make
