"""Command-line latency with the configuration cache disabled, cold and warm, measured side by side.

Each command runs as a new process, as people run it, on the bundled configuration and a SQLite store
holding one complaint. Modes, interleaved round by round so that a busy machine hurts them alike:

- disabled: ``QAFLOW_CACHE=0``, every run checks the whole configuration (what qaflow did before the cache);
- cold: an empty cache folder each run (a configuration just edited: checked, then written to the cache);
- warm: the cache holds the configuration (every run after the first).

Prints the best of N runs: wall time and CPU time (user + system of the child). Target: ``qaflow show``
under 0.3 s wall, warm. Asserts nothing.

    python benchmarks/cli_latency.py [--runs N] [--no-bytecode]

By default the children may write .pyc files (the first, unmeasured round writes them), as an installed
qaflow has them; ``--no-bytecode`` keeps PYTHONDONTWRITEBYTECODE as it is, and every run then compiles
the modules it imports from source.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
MODES = ("disabled", "cold", "warm")


def qaflow() -> list[str]:
    """The installed ``qaflow`` script beside this Python, else ``python -m engine``."""
    script = Path(sys.executable).with_name("qaflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "engine"]


def make_store(path: Path) -> str:
    from engine import Engine, load_config
    from engine.store.sqlite import SQLiteStore

    store = SQLiteStore(str(path))
    try:
        view = Engine(load_config(CONFIG), store=store).start(
            "complaint",
            {"received_on": "2026-11-02", "complainant": "P-0001", "complainant_type": "parent", "case_id": "C-0501",
             "subject": "Social worker changed three times"},
            actor="qa-1", roles=["qa_team"], at="2026-11-02T11:00")
    finally:
        store.close()
    return view.id


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run; the command must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command in each mode; the best is shown")
    parser.add_argument("--no-bytecode", action="store_true", help="leave PYTHONDONTWRITEBYTECODE as it is")
    args = parser.parse_args()

    base = dict(os.environ)
    base.pop("QAFLOW_CACHE", None)
    if not args.no_bytecode:
        base.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="qaflow-cli-latency-") as tmp:
        work = Path(tmp)
        db = work / "qaflow.db"
        instance = make_store(db)
        command = [*qaflow(), "--config", str(CONFIG)]
        commands = {
            "qaflow --help": [*command, "--help"],
            "qaflow show": [*command, "show", instance, "--db", str(db)],
            "qaflow list": [*command, "list", "--db", str(db)],
            "qaflow validate": [*command, "validate"],
        }
        warm_dir = work / "warm"
        envs = {
            "disabled": {**base, "QAFLOW_CACHE": "0"},
            "warm": {**base, "QAFLOW_CACHE_DIR": str(warm_dir)},
        }
        for argv in commands.values():  # writes .pyc files (unless --no-bytecode) and fills the warm cache
            timed(argv, envs["warm"])

        best: dict[tuple[str, str], tuple[float, float]] = {}
        for run in range(args.runs):
            for name, argv in commands.items():
                for mode in MODES:
                    if mode == "cold":
                        cold_dir = work / f"cold-{run}-{len(best)}"
                        env = {**base, "QAFLOW_CACHE_DIR": str(cold_dir)}
                    else:
                        env = envs[mode]
                    wall, cpu = timed(argv, env)
                    if mode == "cold":
                        shutil.rmtree(cold_dir, ignore_errors=True)
                    old = best.get((name, mode))
                    best[(name, mode)] = (min(wall, old[0]), min(cpu, old[1])) if old else (wall, cpu)

    bytecode = "from source (PYTHONDONTWRITEBYTECODE)" if os.environ.get("PYTHONDONTWRITEBYTECODE") and args.no_bytecode \
        else "from .pyc files"
    print(f"qaflow command-line latency, best of {args.runs} runs, seconds (modules loaded {bytecode}); {os.cpu_count()} CPUs")
    print(f"{'':18}" + "".join(f"{mode:>16}" for mode in MODES) + f"{'warm/disabled':>16}")
    print(f"{'':18}" + "".join(f"{'wall':>8}{'cpu':>8}" for _ in MODES) + f"{'wall':>8}{'cpu':>8}")
    for name in commands:
        row = "".join(f"{best[(name, mode)][0]:8.3f}{best[(name, mode)][1]:8.3f}" for mode in MODES)
        (dw, dc), (ww, wc) = best[(name, "disabled")], best[(name, "warm")]
        print(f"{name:18}{row}{ww / dw:8.2f}{wc / dc:8.2f}")
    show = best[("qaflow show", "warm")][0]
    print(f"target: qaflow show under 0.3 s wall, warm: {show:.3f} s ({'met' if show < 0.3 else 'NOT met'})")


if __name__ == "__main__":
    main()
