"""``python -m engine`` is the qaflow command, with every subcommand (including those registered by import)."""

from __future__ import annotations

import subprocess
import sys


def test_python_m_engine_has_every_command():
    run = subprocess.run([sys.executable, "-m", "engine", "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Usage: qaflow")
    for command in ("validate", "test", "simulate", "report", "allocate", "start", "fire"):
        assert f"\n  {command} " in run.stdout, command
