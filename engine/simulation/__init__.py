"""Simulation: drive the real Engine on a virtual clock with a stochastic behaviour model (docs/simulation.md).

    from engine import load_config
    from engine.simulation import run_simulation
    definitions = load_config("config")
    result = run_simulation(definitions, start="2026-10-01", end="2026-12-31", seed=7)
    result.summary()                 # counts, behaviour rules fired, modelling problems
    result.stores                    # one store per authority, for engine.reports.compute_report
    simulate_comparison(Side(...), Side(...), start=..., end=..., runs=10)   # what-if, with intervals

Names are imported lazily, so that the CLI can register its commands without loading the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "BehaviourModel": "engine.simulation.model",
    "check_model": "engine.simulation.model",
    "load_model": "engine.simulation.model",
    "simulate": "engine.simulation.runner",
    "simulation_window": "engine.simulation.runner",
    "SimulationResult": "engine.simulation.runner",
    "AuthorityResult": "engine.simulation.runner",
    "run_simulation": "engine.simulation.api",
    "quarter_of": "engine.simulation.api",
    "simulation_report": "engine.simulation.report",
    "render_simulation": "engine.simulation.report",
    "Side": "engine.simulation.compare",
    "compare_runs": "engine.simulation.compare",
    "simulate_comparison": "engine.simulation.compare",
}

__all__ = [
    "BehaviourModel", "check_model", "load_model", "simulate", "simulation_window", "SimulationResult",
    "AuthorityResult", "run_simulation", "quarter_of", "simulation_report", "render_simulation", "Side", "compare_runs",
    "simulate_comparison",
]

if TYPE_CHECKING:  # the same names, for type checkers and editors (tests/test_api.py keeps the two in step)
    from .api import quarter_of, run_simulation
    from .compare import Side, compare_runs, simulate_comparison
    from .model import BehaviourModel, check_model, load_model
    from .report import render_simulation, simulation_report
    from .runner import AuthorityResult, SimulationResult, simulate, simulation_window


__getattr__, __dir__ = lazy_exports("engine.simulation", _EXPORTS, globals())
