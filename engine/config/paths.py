"""Where configuration lives: the folder shipped inside the package, and paths as people should see them."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["bundled_config_dir", "display_path"]


def bundled_config_dir() -> Path:
    """The configuration shipped inside the package (the top-level ``config/`` folder)."""
    spec = importlib.util.find_spec("engine.bundled")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "config"  # a source tree that was never installed


def display_path(path: Path) -> str:
    """A path as people should see it: relative to the working directory when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return rel if not rel.startswith("..") else str(path)
