"""A year of the QA programme at national scale on the real engine: untraced wall time, the cost per event split, peak memory.

150 authorities (the bundled programmes with every team twice: about 58 audits a month each, with
their moderations, Inadequate reviews, complaints, escalations, surveys and targeted audits), run
authority by authority keeping only counts, never the stores. The headline is that run's wall time,
untraced (with --workers, the national year's wall time), with its CPU time (this process and its
workers) per event.

Then, from the same invocation, a sample: the first --replay authorities (default 3) simulated again in
this process, traced and with their engine calls recorded, gives
  * the raw `transitions` floor: the sample's (workflow, from state, trigger) sequence replayed on one
    shared Machine per workflow with unregistered models and no callbacks;
  * the engine alone: the sample's engine calls replayed on a fresh Engine without the simulator
    (this and the floor are each replayed --repeat times, default 3, keeping the least CPU time: other
    work on a shared machine only ever adds to it);
and the ratios: the engine alone to the floor, the whole simulation (CPU-seconds per event of the
untraced run, which counts the workers too) to the floor, and the simulator's own share per event
(the whole simulation less the engine alone). Every figure per event is CPU time, which a busy shared
machine disturbs less than wall time; both replays run with the cyclic garbage collector paused, as
``simulate`` runs each authority, and the engine alone includes freeing each engine and its store, as
``simulate`` does after each authority, so the split compares like with like. The simulator's share also
holds what the replay leaves out (the monthly KPI import and indicator check), whatever the engine's calls
cost more amid the simulator's work than back to back (processor caches), and, with --workers, the workers
slowing each other on shared cores. The process's one-off costs (imports,
calendar tables, catalogues and expressions built on first use: a few tenths of a second) are paid before the
timing, by simulating the first authority's first two months.

Prints figures; asserts nothing (machines are shared and noisy). Targets on a 2-core machine: the engine
at most 5x the floor per event, the whole simulation at most 10x, the national year with --workers 2 in
at most 45 s wall time, under 1.5 GB peak memory.

    python benchmarks/simulate_year.py --workers 2                    # the national year: 150 authorities, 12 months
    python benchmarks/simulate_year.py --authorities 5                # a quick look (about half a minute)
    python benchmarks/simulate_year.py --authorities 10 --months 3 --no-floor   # the run alone, no sample
    python benchmarks/simulate_year.py --authorities 5 --profile     # cProfile of the run
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

from engine.simulation.runner import _collector_paused  # as simulate runs each authority: the replays compare like with like

ROOT = Path(__file__).resolve().parent.parent


def _model(definitions, authorities: int, copies: int, root: Path = ROOT):
    """The bundled behaviour model (of the tree at ``root``) for ``authorities`` authorities, each team ``copies`` times."""
    from engine.simulation.model import load_model

    model = load_model(definitions, root / "config")
    auths = tuple((f"la{n:03d}", f"Authority {n}") for n in range(1, authorities + 1))
    population = dataclasses.replace(model.population, authorities=auths, team_copies=copies)
    settings = dataclasses.replace(model.settings, warmup=None)  # exactly the year asked for
    return dataclasses.replace(model, population=population, settings=settings)


def _slim(result):
    """Keep the counts (and the compact trace, if any) of each authority; drop the store."""
    result.store = None
    return result


def replay_floor(definitions, results) -> tuple[int, float]:
    """Replay every recorded (workflow, from, trigger) on raw transitions: (events replayed, CPU seconds)."""
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
    with _collector_paused():
        t0 = time.process_time()
        for table, trace in plan:
            for code in trace:
                step = table[code]
                if step is None:
                    continue
                model.state = step[1]
                step[0](model)
                n += 1
        seconds = time.process_time() - t0
    return n, seconds


class _Recording:
    """Records the Engine calls of the authorities the simulator runs in this process while installed."""

    def __init__(self) -> None:
        self.logs: list[list[tuple[str, tuple, dict]]] = []
        self._saved = None

    def install(self) -> None:
        from engine.runtime.engine import Engine
        from engine.simulation import runner

        recording = self

        class RecordingEngine(Engine):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
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

        self._saved = runner.Engine
        runner.Engine = RecordingEngine

    def uninstall(self) -> None:
        from engine.simulation import runner

        runner.Engine = self._saved


def replay_engine(definitions, logs) -> tuple[int, float]:
    """Replay recorded engine calls on fresh engines, no simulator: (engine events, CPU seconds).

    The seconds include freeing each engine and its store afterwards, as ``simulate`` frees them after each
    authority: that is the engine's memory, not the simulator's.
    """
    from engine import Refused
    from engine.runtime.engine import Engine
    from engine.store.memory import MemoryStore

    events, seconds = 0, 0.0
    for log in logs:
        store = MemoryStore()
        eng = Engine(definitions, store)
        with _collector_paused():
            t0 = time.process_time()
            for name, args, kwargs in log:
                try:  # noqa: SIM105 - a timed loop: contextlib.suppress would add a context manager per call
                    getattr(eng, name)(*args, **kwargs)
                except Refused:
                    pass  # refused in the simulation too: nothing changes
            seconds += time.process_time() - t0
            events += sum(len(store.history(iid)) for iid in store._instances)
            t0 = time.process_time()
            del eng, store
            seconds += time.process_time() - t0
    return events, seconds


def _month_end(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1) - dt.timedelta(days=1)


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
    parser.add_argument("--no-floor", action="store_true", help="skip the sample (the floor and the engine alone)")
    parser.add_argument("--replay", type=int, default=3, metavar="N",
                        help="the sample: the first N authorities, traced and their engine calls replayed (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, metavar="K",
                        help="replay the sample K times and keep the least CPU time of each replay (default 3)")
    args = parser.parse_args()
    args.repeat = max(1, args.repeat)

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

    def on_result(r):
        done[0] += 1
        if sys.stderr.isatty():
            print(f"\r{done[0]}/{args.authorities} authorities", end="", file=sys.stderr, flush=True)
        return _slim(r)

    def run():
        return simulate(definitions, model, programmes, start=start, end=end, seed=args.seed, workers=args.workers,
                        keep_stores=False, on_result=on_result)

    # not timed: the first authority's first two months (every monthly step, the KPI import included, runs once), so
    # that the figures per event leave out the process's one-off costs (imports, calendar tables, catalogues and
    # expressions built on first use)
    warm_end = min(end, _month_end(_month_end(start) + dt.timedelta(days=1)))
    simulate(definitions, model, programmes, start=start, end=warm_end, seed=args.seed, keep_stores=False,
             authorities=model.population.authorities[:1])

    # the run asked for, untraced: the headline
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
    own, children = peak_mb()  # before the sample, which keeps traces and recorded calls
    if sys.stderr.isatty():
        print(file=sys.stderr)
    totals = result.totals()
    events = totals["events"]
    audits = totals["allocated"]
    whole_us = cpu / events * 1e6
    profiled = " (under cProfile)" if args.profile else ""
    print(f"simulated {args.authorities} authorities x {args.months} months ({start} to {end}), seed {args.seed}, "
          f"workers {args.workers}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"  wall time{profiled}: {wall:.1f} s, untraced   (target for 150 authorities with --workers 2: <= 45 s)")
    print(f"  audits allocated: {audits} ({audits / max(1, args.authorities * args.months):.1f} per authority-month); "
          f"instances started: {totals['starts']}; triggers fired: {totals['fires']}; deadlines passed: {totals['breaches']}; "
          f"refused (modelling problems): {totals['refused']}")
    print(f"  engine events (history entries): {events:,}   engine commits (accepted calls): {totals['commits']:,}   "
          f"engine events per wall second: {events / wall:,.0f}")
    print(f"  CPU time (this process and its workers): {cpu:.1f} s   events per CPU-second: {events / cpu:,.0f}   "
          f"({whole_us:.1f} us of CPU an event)")
    print(f"  peak memory (max RSS): this process {own:,.0f} MB, largest worker {children:,.0f} MB   (target < 1,536 MB)")
    for problem in result.problems()[:5]:
        print(f"  modelling problem: {problem['where']}: rule '{problem['rule']}' {problem['trigger']} in "
              f"{problem['workflow']}/{problem['state']}: {problem['error']} x{problem['count']}: {problem['message'][:160]}")
    if args.profile:
        stats = pstats.Stats(prof)
        stats.sort_stats(os.environ.get("QAFLOW_PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("QAFLOW_PROFILE_TOP", "30")))

    # the sample: the first authorities again, in this process, traced and recorded, for the floor and the engine alone
    first = min(args.replay, args.authorities)
    if args.no_floor or first <= 0:
        return
    recording = _Recording()
    recording.install()
    try:
        t0 = time.perf_counter()
        sample = simulate(definitions, model, programmes, start=start, end=end, seed=args.seed, workers=1, keep_stores=False,
                          trace=True, authorities=model.population.authorities[:first], on_result=_slim)
        sample_wall = time.perf_counter() - t0
    finally:
        recording.uninstall()
    sample_events = sample.totals()["events"]
    print(f"  sample: the first {first} authorities again in one process, traced and recording the engine calls: "
          f"{sample_events:,} events in {sample_wall:.1f} s")
    # each replay the best of --repeat: another process on the machine only ever adds to a replay's time
    n, secs = min((replay_floor(definitions, sample.authorities) for _ in range(args.repeat)), key=lambda r: r[1])
    floor_us = secs / n * 1e6
    print(f"    raw transitions floor: {n:,} transitions replayed in {secs:.2f} CPU-s = {n / secs:,.0f} a CPU-second "
          f"({floor_us:.1f} us an event; the best of {args.repeat})")
    e, esecs = min((replay_engine(definitions, copy.deepcopy(recording.logs)) for _ in range(args.repeat)), key=lambda r: r[1])
    engine_us = esecs / e * 1e6
    print(f"    engine alone (the sample's engine calls replayed without the simulator): {e:,} events in {esecs:.2f} CPU-s "
          f"= {e / esecs:,.0f} a CPU-second ({engine_us:.1f} us an event; the best of {args.repeat})")
    print(f"  engine alone / floor: {engine_us / floor_us:.1f}x   (target <= 5x)")
    if args.profile:
        print("  (the run was under cProfile: the whole simulation and the simulator's share are not compared)")
        return
    print(f"  whole simulation / floor: {whole_us / floor_us:.1f}x   (target <= 10x; the whole simulation is the untraced run's "
          f"CPU-seconds per event, workers included: {whole_us:.1f} us)")
    print(f"  the simulator's own share: {whole_us - engine_us:.1f} us an event ({(whole_us - engine_us) / whole_us:.0%} of the whole; "
          f"the whole simulation less the engine alone)")


if __name__ == "__main__":
    main()
