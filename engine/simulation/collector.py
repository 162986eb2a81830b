"""The garbage collector's thresholds while a simulation runs.

A simulated authority keeps its whole store in memory: every history entry, alert and deadline the
engine writes stays alive until the authority is done. CPython's cyclic collector runs a young
collection every 700 new container objects and, from time to time, walks every object alive, so a
store that only grows makes it run and rerun over the same entries: about a quarter of the engine's
time in `benchmarks/simulate_year.py`. The engine makes no reference cycles on its hot path (objects
are freed by reference counting), so a run can collect far less often without growing: the
thresholds are raised while it runs and put back after.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: young collections every 50,000 new objects instead of 700; older generations correspondingly rarer
SIMULATION_THRESHOLDS = (50_000, 20, 100)


@contextlib.contextmanager
def tuned_collector() -> Iterator[None]:
    """Run the block with the collector's thresholds raised; the previous ones are restored after,
    also when the block raises. Nested uses keep the outer thresholds."""
    previous = gc.get_threshold()
    if previous[0] >= SIMULATION_THRESHOLDS[0]:
        yield
        return
    gc.set_threshold(*SIMULATION_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
