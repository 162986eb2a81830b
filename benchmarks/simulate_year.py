"""A year of the QA programme at national scale on the real engine: engine events per second, wall time, peak memory.

150 authorities (the bundled programmes with every team twice: about 58 audits a month each, with
their moderations, Inadequate reviews, complaints, escalations, surveys and targeted audits), run
authority by authority keeping only counts, never the stores. Beside it, the raw `transitions`
floor: the same run's recorded (workflow, from state, trigger) sequence replayed on one shared
Machine per workflow with unregistered models and no callbacks.

Also the engine alone: the engine calls of the first authorities (--replay, default 3) are recorded
and replayed on a fresh Engine without the simulator, which splits the time between the two.

Prints figures; asserts nothing (machines are shared and noisy). Targets on a 2-core machine: at
least 25,000 engine events a second in one process, under 1.5 GB peak memory, --workers 2 near-linear.

    python benchmarks/simulate_year.py                       # 150 authorities, 12 months
    python benchmarks/simulate_year.py --authorities 10 --months 3
    python benchmarks/simulate_year.py --workers 2
    python benchmarks/simulate_year.py --authorities 5 --profile   # cProfile of the hot path
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _model(definitions, authorities: int, copies: int):
    from engine.simulation.model import load_model

    model = load_model(definitions, ROOT / "config")
    auths = tuple((f"la{n:03d}", f"Authority {n}") for n in range(1, authorities + 1))
    population = dataclasses.replace(model.population, authorities=auths, team_copies=copies)
    settings = dataclasses.replace(model.settings, warmup=None)  # exactly the year asked for
    return dataclasses.replace(model, population=population, settings=settings)


def _slim(keep_trace: bool):
    """Keep the counts (and the compact trace for the floor) of each authority; drop the store."""

    def reduce(result):
        result.store = None
        if not keep_trace:
            result.trace = None
        return result

    return reduce


def replay_floor(definitions, results) -> tuple[int, float]:
    """Replay every recorded (workflow, from, trigger) on raw transitions: (events replayed, seconds)."""
    import logging

    from transitions import Machine

    logging.getLogger("transitions").setLevel(logging.WARNING)
    machines = {}
    for wid, wf in definitions.workflows.items():
        m = Machine(model=None, states=list(wf.states), initial=wf.initial, auto_transitions=False,
                    send_event=True, ignore_invalid_triggers=True)
        for t in wf.transitions:
            if t.sources:
                m.add_transition(t.event_key, list(t.sources), t.dest)
        machines[wid] = m

    class Model:
        __slots__ = ("state",)

        def __init__(self) -> None:
            self.state = ""

    # decode the compact traces into (event, from) pairs of bound methods, outside the timing
    plan = []
    for r in results:
        if r.trace is None:
            continue
        codes, trace = r.trace
        table = [None] * len(codes)
        for (wid, frm, trig), code in codes.items():
            wf = definitions.workflows[wid]
            if frm is None or (trig, frm) not in wf.by_event:
                continue  # starts, and breaches with no transition, have nothing to replay
            table[code] = (machines[wid].events[trig].trigger, frm)
        plan.append((table, trace))
    model = Model()
    n = 0
    t0 = time.perf_counter()
    for table, trace in plan:
        for code in trace:
            step = table[code]
            if step is None:
                continue
            model.state = step[1]
            step[0](model)
            n += 1
    return n, time.perf_counter() - t0


class _Recording:
    """Records the Engine calls of the first ``limit`` authorities the simulator runs (one process only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.logs: list[list[tuple[str, tuple, dict]]] = []

    def install(self) -> None:
        from engine.runtime.engine import Engine
        from engine.simulation import runner

        recording = self

        class RecordingEngine(Engine):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self._log = None
                if len(recording.logs) < recording.limit:
                    self._log = []
                    recording.logs.append(self._log)

            def start(self, *args, **kwargs):
                if self._log is not None:
                    self._log.append(("start", args, kwargs))
                return super().start(*args, **kwargs)

            def fire(self, *args, **kwargs):
                if self._log is not None:
                    self._log.append(("fire", args, kwargs))
                return super().fire(*args, **kwargs)

            def advance(self, *args, **kwargs):
                if self._log is not None:
                    self._log.append(("advance", args, kwargs))
                return super().advance(*args, **kwargs)

        runner.Engine = RecordingEngine


def replay_engine(definitions, logs) -> tuple[int, float]:
    """Replay recorded engine calls on fresh engines, no simulator: (engine events, seconds)."""
    from engine import Refused
    from engine.runtime.engine import Engine
    from engine.store.memory import MemoryStore

    events, seconds = 0, 0.0
    for log in logs:
        store = MemoryStore()
        eng = Engine(definitions, store)
        t0 = time.perf_counter()
        for name, args, kwargs in log:
            try:  # noqa: SIM105 - a timed loop: contextlib.suppress would add a context manager per call
                getattr(eng, name)(*args, **kwargs)
            except Refused:
                pass  # refused in the simulation too: nothing changes
        seconds += time.perf_counter() - t0
        events += sum(len(store.history(iid)) for iid in store._instances)
    return events, seconds


def peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authorities", type=int, default=150)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--team-copies", type=int, default=2, help="each programme team this many times (2: ~58 audits a month)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--from", dest="start", default="2026-04-01")
    parser.add_argument("--profile", action="store_true", help="run under cProfile and print the top functions")
    parser.add_argument("--no-floor", action="store_true", help="skip the raw transitions replay")
    parser.add_argument("--replay", type=int, default=3, metavar="N",
                        help="replay the engine calls of the first N authorities on the engine alone (0: skip; one process only)")
    args = parser.parse_args()

    from engine import load_config
    from engine.allocation import load_programmes
    from engine.simulation.runner import simulate

    definitions = load_config(ROOT / "config")
    model = _model(definitions, args.authorities, args.team_copies)
    programmes, _ = load_programmes(ROOT / "config")
    start = dt.date.fromisoformat(args.start)
    end_month = dt.date(start.year + (start.month - 1 + args.months) // 12, (start.month - 1 + args.months) % 12 + 1, 1)
    end = end_month - dt.timedelta(days=1)
    done = [0]
    recording = _Recording(args.replay) if args.replay > 0 and args.workers <= 1 else None
    if recording is not None:
        recording.install()

    def on_result(r):
        done[0] += 1
        if sys.stderr.isatty():
            print(f"\r{done[0]}/{args.authorities} authorities", end="", file=sys.stderr, flush=True)
        return _slim(not args.no_floor)(r)

    def run():
        return simulate(definitions, model, programmes, start=start, end=end, seed=args.seed, workers=args.workers,
                        keep_stores=False, trace=not args.no_floor, on_result=on_result)

    t0 = time.perf_counter()
    c0 = time.process_time()
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(run)
    else:
        result = run()
    wall = time.perf_counter() - t0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + kids.ru_utime + kids.ru_stime
    if sys.stderr.isatty():
        print(file=sys.stderr)
    totals = result.totals()
    events = totals["events"]
    own, children = peak_mb()
    audits = totals["allocated"]
    print(f"simulated {args.authorities} authorities x {args.months} months ({start} to {end}), seed {args.seed}, "
          f"workers {args.workers}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"  audits allocated: {audits} ({audits / max(1, args.authorities * args.months):.1f} per authority-month); "
          f"instances started: {totals['starts']}; triggers fired: {totals['fires']}; deadlines passed: {totals['breaches']}; "
          f"refused (modelling problems): {totals['refused']}")
    print(f"  engine events (history entries): {events:,}   engine commits (accepted calls): {totals['commits']:,}")
    print(f"  wall time: {wall:.1f} s   engine events per second: {events / wall:,.0f}   (target >= 25,000 in one process)")
    print(f"  CPU time (this process and its workers): {cpu:.1f} s   events per CPU-second: {events / cpu:,.0f}")
    print(f"  peak memory (max RSS): this process {own:,.0f} MB, largest worker {children:,.0f} MB   (target < 1,536 MB)")
    for problem in result.problems()[:5]:
        print(f"  modelling problem: {problem['where']}: rule '{problem['rule']}' {problem['trigger']} in "
              f"{problem['workflow']}/{problem['state']}: {problem['error']} x{problem['count']}: {problem['message'][:160]}")
    if not args.no_floor:
        n, secs = replay_floor(definitions, result.authorities)
        print(f"  raw transitions floor: {n:,} transitions replayed in {secs:.2f} s = {n / secs:,.0f} events per second "
              f"({secs / n * 1e6:.1f} us/event; engine {wall / events * 1e6:.1f} us/event, {wall / secs:.1f}x the floor)")
    if recording is not None and recording.logs:
        n, secs = replay_engine(definitions, recording.logs)
        print(f"  engine alone: the calls of the first {len(recording.logs)} authorities replayed without the simulator: "
              f"{n:,} events in {secs:.2f} s = {n / secs:,.0f} events per second ({secs / n * 1e6:.1f} us/event)")
    if args.profile:
        stats = pstats.Stats(prof)
        stats.sort_stats(os.environ.get("QAFLOW_PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("QAFLOW_PROFILE_TOP", "30")))


if __name__ == "__main__":
    main()
