"""Helpers for the impact tests: the bundled configuration, edits to a copy of it, and the hand-dated world of tests/reports."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
if str(ROOT / "tests" / "reports") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "reports"))  # report_world: the hand-dated October 2026


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there exactly once) by ``new`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")
