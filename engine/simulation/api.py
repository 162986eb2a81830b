"""The simulation entry point used by the CLI and hosts: load the model and programmes, run, return results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..allocation import load_programmes
from ..calendar import london_date
from ..clock import FIRST_YEAR, LAST_YEAR
from ..errors import ConfigError, UsageError
from .model import BehaviourModel, load_model
from .runner import SimulationResult, simulate

__all__ = ["run_simulation", "quarter_of", "as_date"]


#: The longest period one simulation covers; longer runs are better split (and compared) by year.
MAX_YEARS = 10


def as_date(value: Any) -> dt.date:
    """A date the simulator can run on: within the years qaflow works with."""
    day = london_date(value)
    if day is None:
        raise UsageError(f"'{value}' is not a date (YYYY-MM-DD)")
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise UsageError(f"{day} is outside the years qaflow works with ({FIRST_YEAR}-{LAST_YEAR})")
    return day


def quarter_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The calendar quarter holding ``day`` (the council's financial quarters line up with these)."""
    first_month = (day.month - 1) // 3 * 3 + 1
    start = dt.date(day.year, first_month, 1)
    nxt = dt.date(day.year + (first_month + 3 > 12), (first_month + 3 - 1) % 12 + 1, 1)
    return start, nxt - dt.timedelta(days=1)


def run_simulation(
    definitions: Any,
    *,
    start: Any,
    end: Any,
    seed: Any = 0,
    config_dir: str | Path | None = None,
    scenario: str | Path | None = None,
    model: BehaviourModel | None = None,
    programmes: Sequence[str] | None = None,
    workers: int = 1,
    keep_stores: bool = True,
    trace: bool = False,
    progress: Callable[[int], None] | None = None,
    authorities: Sequence[tuple[str, str]] | None = None,
    on_result: Callable[[Any], Any] | None = None,
) -> SimulationResult:
    """Run the behaviour model of ``config_dir`` (default: the definitions' own folder) or ``scenario``.

    ``programmes``: names of programmes to include (ids, services or file names); default all.
    """
    root = Path(config_dir) if config_dir is not None else Path(definitions.root)
    if model is None:
        model = load_model(definitions, root, scenario)
    progs, problems = load_programmes(root, programmes)
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    if not progs:
        raise UsageError(f"no programmes to simulate in '{root / 'programmes'}'")
    start_d, end_d = as_date(start), as_date(end)
    if end_d < start_d:
        raise UsageError(f"--to {end_d} is before --from {start_d}")
    if (end_d - start_d).days > 366 * MAX_YEARS:
        raise UsageError(f"{start_d} to {end_d} is longer than {MAX_YEARS} years: simulate a shorter period")
    return simulate(definitions, model, progs, start=start_d, end=end_d, seed=seed, workers=workers,
                    keep_stores=keep_stores, trace=trace, progress=progress, authorities=authorities, on_result=on_result)
