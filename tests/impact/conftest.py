"""Fixtures for the impact tests: a changed copy of the bundled configuration."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from impact_config import CONFIG, edit


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
