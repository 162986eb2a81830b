"""What-if comparisons: two configurations simulated on the same seeds, N runs each, every difference with an interval.

Run ``r`` of both configurations uses the same seed (``replication_seed``), and the simulator draws its
random numbers per entity (runner.py), so the two runs of a pair differ only where the change reaches.
For every figure, the N paired differences (B minus A) give a mean and a 95% t-interval; a difference
is *distinguishable from noise* when its interval excludes 0. A figure that is the same in every pair
is not a difference at all (``changed`` lists only those that are not). With one run there is no
interval: the comparison is the plain ``compare_reports`` of the two reports, marked as modelled.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import BehaviourModel
from .runner import SimulationResult

__all__ = ["Side", "Comparison", "replication_seed", "t_quantile", "compare_runs", "simulate_comparison"]

#: The confidence level of the intervals.
CONFIDENCE = 0.95

# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (a 95% two-sided interval)."""
    if df < 1:
        raise ValueError("a t-interval needs at least 2 runs")
    if df <= len(_T95):
        return _T95[df - 1]
    z = 1.959964  # beyond 30: the Cornish-Fisher expansion, good to 1e-4
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2) \
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)


def replication_seed(seed: Any, run: int) -> Any:
    """The seed of run ``run`` (0-based): the seed itself for the first, so one run is the plain simulation."""
    return seed if run == 0 else f"{seed}/{run + 1}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if {"a", "b"} <= set(node) and ("difference" in node or "same" in node):
            yield path, node
            return
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))


def _put(tree: dict[str, Any], path: tuple[str, ...], leaf: dict[str, Any]) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = leaf


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _numeric_leaf(leaves: Sequence[Mapping[str, Any] | None]) -> tuple[dict[str, Any], bool]:
    """(the figure over the runs, whether it differs in any run)."""
    pairs = [(leaf["a"], leaf["b"]) for leaf in leaves if leaf is not None and _number(leaf["a"]) and _number(leaf["b"])]
    differs = any(leaf is not None and leaf.get("a") != leaf.get("b") for leaf in leaves)  # None: in neither that run
    a_values = [leaf["a"] for leaf in leaves if leaf is not None and _number(leaf["a"])]
    b_values = [leaf["b"] for leaf in leaves if leaf is not None and _number(leaf["b"])]
    out: dict[str, Any] = {
        "a": _round(statistics.fmean(a_values)) if a_values else None,
        "b": _round(statistics.fmean(b_values)) if b_values else None,
        "difference": None, "low": None, "high": None, "runs": len(pairs), "distinguishable": False,
    }
    if pairs:
        diffs = [b - a for a, b in pairs]
        mean = statistics.fmean(diffs)
        out["difference"] = _round(mean)
        if len(diffs) >= 2:
            half = t_quantile(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
            low, high = mean - half, mean + half
            out.update(low=_round(low), high=_round(high), distinguishable=low > 0 or high < 0)
    return out, differs


def compare_runs(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], labels: tuple[str, str] = ("a", "b"),
                 *, seeds: Sequence[Any] = ()) -> dict[str, Any]:
    """The comparison of paired reports (run ``r`` of A with run ``r`` of B), as ``compare_reports`` shapes it.

    Each figure becomes ``{"a", "b", "difference", "low", "high", "runs", "distinguishable"}``: the means
    over the runs, the mean of the differences (B minus A) with its 95% t-interval, the number of pairs
    in which both had a number, and whether the interval excludes 0. Other values keep the first run's
    ``{"a", "b", "same"}`` (``same`` only if they agree in every run). ``changed``: figures that differ in
    at least one run; ``distinguishable``: those whose difference is more than noise.
    """
    from ..reports.metrics import compare_reports

    if not pairs:
        raise ValueError("compare_runs needs at least one pair of reports")
    each = [compare_reports(a, b, labels=labels) for a, b in pairs]
    runs = len(each)
    out: dict[str, Any] = dict(each[0])
    out.update(modelled=True, runs=runs, confidence=CONFIDENCE, direction="b minus a")
    if seeds:
        out["seeds"] = list(seeds)
    if runs == 1:
        out["distinguishable"] = []
        return out
    found: dict[tuple[str, ...], list[Mapping[str, Any] | None]] = {}
    for r, comparison in enumerate(each):
        for path, leaf in _leaves(comparison.get("metrics") or {}):
            found.setdefault(path, [None] * runs)[r] = leaf
    metrics: dict[str, Any] = {}
    changed: list[str] = []
    beyond: list[str] = []
    for path in sorted(found):
        leaves = found[path]
        dotted = ".".join(path)
        if any(leaf is not None and "difference" in leaf for leaf in leaves):
            leaf, differs = _numeric_leaf(leaves)
            if leaf["distinguishable"]:
                beyond.append(dotted)
        else:
            first = next(leaf for leaf in leaves if leaf is not None)
            differing = sum(1 for leaf in leaves if leaf is not None and not leaf.get("same"))
            leaf = {"a": first["a"], "b": first["b"], "same": differing == 0, "runs": runs, "differs_in": differing}
            differs = differing > 0
        if differs:
            changed.append(dotted)
        _put(metrics, path, leaf)
    out.update(metrics=metrics, changed=changed, distinguishable=beyond)
    return out


# --------------------------------------------------------------------------- running the pairs


@dataclass(frozen=True)
class Side:
    """One configuration of a comparison: its definitions, behaviour model, programmes folder and label."""

    definitions: Any
    model: BehaviourModel
    config_dir: Path
    label: str


@dataclass
class Comparison:
    """The first run's report of each side (what a single simulation would print) and the comparison;
    with ``keep_first``, A's first run itself (its stores hold the simulated history)."""

    report_a: dict[str, Any]
    report_b: dict[str, Any]
    comparison: dict[str, Any]
    result_a: SimulationResult | None = None


_TASKS: dict[str, Any] = {}


def _one_run(task: tuple[int, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    side_index, run = task
    t = _TASKS
    side: Side = t["sides"][side_index]
    report, summary, _ = _simulate(side, run, t["options"], workers=1, progress=None)
    return report, summary  # the stores stay in the worker


def _simulate(side: Side, run: int, options: Mapping[str, Any], *, workers: int,
              progress: Callable[[int], None] | None) -> tuple[dict[str, Any], dict[str, Any], SimulationResult]:
    from .api import run_simulation
    from .report import simulation_report

    result = run_simulation(side.definitions, start=options["start"], end=options["end"],
                            seed=replication_seed(options["seed"], run), config_dir=side.config_dir, model=side.model,
                            programmes=options["programmes"], workers=workers, progress=progress)
    return simulation_report(result, side.definitions, level=options["level"]), result.summary(), result


def simulate_comparison(a: Side, b: Side, *, start: dt.date, end: dt.date, seed: Any = 0, runs: int = 1, workers: int = 1,
                        programmes: Sequence[str] | None = None, level: str = "department",
                        progress: Callable[[int], None] | None = None, keep_first: bool = False) -> Comparison:
    """Simulate both configurations ``runs`` times on the same seeds and compare them pair by pair.

    With one run, ``workers`` spread each simulation's authorities over processes (as ``simulate``
    does); with several, they spread the 2 x ``runs`` simulations. The result does not depend on it.
    ``progress(n)`` is told of simulated days (per authority), as in ``run_simulation``. ``keep_first``:
    also return A's first run (``result_a``), e.g. to write its history into a store.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    options = {"start": start, "end": end, "seed": seed, "programmes": list(programmes) if programmes else None, "level": level}
    tasks = [(side, run) for run in range(runs) for side in (0, 1)]
    sides = (a, b)
    results: list[tuple[dict[str, Any], dict[str, Any]]] = []
    first: SimulationResult | None = None
    if runs == 1 or workers <= 1:
        for side, run in tasks:
            report, summary, result = _simulate(sides[side], run, options, workers=workers if runs == 1 else 1,
                                                progress=progress)
            results.append((report, summary))
            if keep_first and (side, run) == (0, 0):
                first = result
    else:
        import multiprocessing as mp

        from .runner import simulation_window

        per_run = [(simulation_window(s.model, start, end), len(s.model.population.authorities)) for s in sides]
        _TASKS.clear()
        _TASKS.update(sides=sides, options=options)
        ctx: mp.context.BaseContext
        try:
            ctx = mp.get_context("fork")
        except ValueError:  # pragma: no cover - no fork (Windows, macOS defaults)
            ctx = mp.get_context()
        try:
            with ctx.Pool(processes=min(workers, len(tasks))) as pool:
                for (side, _), done in zip(tasks, pool.imap(_one_run, tasks, chunksize=1), strict=True):
                    if progress is not None:
                        (day_one, stop), authorities = per_run[side]
                        progress((stop.date() - day_one).days * authorities)
                    results.append(done)
        finally:
            _TASKS.clear()
        if keep_first:  # its stores stayed in a worker: run it again here (the same seed gives the same run)
            first = _simulate(a, 0, options, workers=1, progress=None)[2]
    pairs = [(results[2 * r][0], results[2 * r + 1][0]) for r in range(runs)]
    comparison = compare_runs(pairs, (a.label, b.label), seeds=[replication_seed(seed, r) for r in range(runs)])
    comparison["simulation"] = {"a": results[0][1], "b": results[1][1]}
    return Comparison(report_a=pairs[0][0], report_b=pairs[0][1], comparison=comparison, result_a=first)
