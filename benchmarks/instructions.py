"""Instructions a simulated year costs, the working tree against a git revision: a comparison the machine's load cannot move.

Times on a shared machine swing 2-3x with its load, so a change worth 1% cannot be seen in them.
valgrind's callgrind counts the instructions the interpreter executes instead; with string hashing
fixed (PYTHONHASHSEED=0) and address randomisation off (setarch -R), two runs of the same code
count the same to within a few instructions. It runs about fifty times slower than normal, so the
workload is small: by default one authority's year (about 18,000 engine events), the same model
as benchmarks/simulate_year.py.

Each tree (the revision, unpacked with git archive, and the working tree) is run under callgrind
in its own process, both at once when there are two cores: imports, loading the configuration and
the warm-up (the first authority's first two months, as simulate_year.py does) are counted apart
from the run itself. Prints the counts and the ratios working tree / revision; asserts nothing.
Needs valgrind (callgrind_control comes with it); compares revisions whose simulation API
(engine.simulation.runner.simulate, engine.simulation.model.load_model) this script can call.

    python benchmarks/instructions.py                      # the working tree against HEAD
    python benchmarks/instructions.py --base HEAD~3        # against an older revision
    python benchmarks/instructions.py --authorities 2 --months 6
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def workload(tree: Path, authorities: int, months: int, seed: int, result: Path) -> None:
    """Run inside callgrind: load, tell callgrind to close the loading count, simulate, write the event count."""
    import engine
    from engine import load_config
    from engine.allocation import load_programmes
    from engine.simulation.runner import simulate

    here = Path(engine.__file__).resolve()
    if tree.resolve() not in here.parents:
        raise SystemExit(f"engine was imported from {here}, not from {tree}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from simulate_year import _model, _month_end

    definitions = load_config(tree / "config")
    model = _model(definitions, authorities, 2, root=tree)
    programmes, _ = load_programmes(tree / "config")
    start = dt.date(2026, 4, 1)
    end = dt.date(2026 + (3 + months) // 12, (3 + months) % 12 + 1, 1) - dt.timedelta(days=1)
    warm_end = min(end, _month_end(_month_end(start) + dt.timedelta(days=1)))
    simulate(definitions, model, programmes, start=start, end=warm_end, seed=seed, keep_stores=False,
             authorities=model.population.authorities[:1])

    out = os.environ["QAFLOW_CALLGRIND_OUT"]
    subprocess.run(["callgrind_control", "--dump=loaded", str(os.getpid())], check=True, capture_output=True)
    waited = time.monotonic()
    while not glob.glob(out + ".*"):  # callgrind acts on the request at its next check: wait for the dump
        if time.monotonic() - waited > 120:
            raise SystemExit("callgrind did not dump the loading count")
        time.sleep(0.01)

    found = simulate(definitions, model, programmes, start=start, end=end, seed=seed, keep_stores=False)
    result.write_text(str(sum(a.stats["events"] for a in found.authorities)))


def _totals(path: str) -> int:
    with open(path) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("totals:"))


def measure(tree: Path, args: argparse.Namespace, work: Path, name: str) -> subprocess.Popen:
    out = str(work / f"{name}.callgrind")
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0", "QAFLOW_CALLGRIND_OUT": out}
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__, "--workload", str(tree),
               "--authorities", str(args.authorities), "--months", str(args.months), "--seed", str(args.seed),
               "--result", str(work / f"{name}.events")]
    if shutil.which("setarch"):
        command = ["setarch", "-R", *command]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "w"))


def counts(work: Path, name: str) -> tuple[int, int, int]:
    """(loading, the run, events) of one finished measurement."""
    out = str(work / f"{name}.callgrind")
    loading = _totals(out + ".1")
    return loading, _totals(out), int((work / f"{name}.events").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the git revision to compare the working tree with (default HEAD)")
    parser.add_argument("--authorities", type=int, default=1)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workload", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:
        workload(args.workload, args.authorities, args.months, args.seed, args.result)
        return
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        print(f"instructions.py needs {' and '.join(missing)} (valgrind's callgrind): not found on PATH", file=sys.stderr)
        raise SystemExit(2)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base], check=False, capture_output=True, text=True)
    if rev.returncode != 0:
        print(f"not a revision here: {args.base}", file=sys.stderr)
        raise SystemExit(2)
    short = rev.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="qaflow-instructions-") as tmp:
        work = Path(tmp)
        base = work / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        print(f"counting instructions with callgrind (about fifty times slower than a normal run): {args.authorities} "
              f"authorit{'y' if args.authorities == 1 else 'ies'} x {args.months} months, seed {args.seed}", flush=True)
        together = (os.cpu_count() or 1) >= 2
        running = []
        for tree, name in ((base, "base"), (ROOT, "work")):
            running.append((name, measure(tree, args, work, name)))
            if not together:
                running[-1][1].wait()
        for name, proc in running:
            if proc.wait() != 0:
                print(f"the {'revision' if name == 'base' else 'working tree'} run failed:\n{(work / f'{name}.log').read_text()[-2000:]}",
                      file=sys.stderr)
                raise SystemExit(1)
        a, b = counts(work, "base"), counts(work, "work")
    print(f"{'':24} {'loading':>16} {'the run':>16} {'events':>8} {'an event':>12}")
    for label, (loading, run, events) in ((f"revision {short}", a), ("working tree", b)):
        print(f"{label:24} {loading / 1e6:>14,.0f} M {run / 1e6:>14,.0f} M {events:>8,} {run / max(events, 1):>12,.0f}")
    print(f"working tree / revision: loading {b[0] / a[0]:.4f}, the run {b[1] / a[1]:.4f}, "
          f"an event {(b[1] / max(b[2], 1)) / (a[1] / max(a[2], 1)):.4f}")
    if a[2] != b[2]:
        print("the two runs recorded different numbers of events: they did different work, so compare the figures an event")


if __name__ == "__main__":
    main()
