"""Check a configuration against what a store is running, before it goes live.

Running instances keep the workflow version they started on; the store keeps that version's text
and compiles it against today's rules. A change that ``qaflow validate`` accepts on its own can still
strand them: a renamed timescale or decision table that an older version names, a workflow removed
while instances or scheduled starts need it, a file edited without raising its version. This finds
those, as problems located in the configuration, so that they are refused before ``advance`` meets
them (it would set the items aside).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..config.loader import compile_stored_workflow, display_path
from ..definitions import Definitions, StartChild, WorkflowDef
from ..errors import UsageError
from ..problems import Location, Problem
from ..store.base import Store


def check_against_store(definitions: Definitions, store: Store, *, label: str) -> list[Problem]:
    """Every way ``definitions`` would strand what ``store`` is running; ``label`` names the store."""
    problems: list[Problem] = []
    running: dict[tuple[str, int], list[str]] = defaultdict(list)
    for inst in store.find():
        running[(inst.workflow, inst.version)].append(inst.id)
    for (workflow, version), ids in sorted(running.items()):
        problems += _check_version(definitions, store, workflow, version, ids, label)
    for sched in store.schedules():
        if sched["workflow"] not in definitions.workflows:
            problems.append(Problem(
                Location(label), "error", "stranded-schedule",
                f"scheduled start {sched['id']} ({sched['at'].isoformat()}) is for workflow '{sched['workflow']}', "
                "which this configuration no longer has",
            ))
    held = store.held()
    if held:
        problems.append(Problem(
            Location(label), "warning", "items-set-aside",
            f"{len(held)} deadline(s) or scheduled start(s) in the store were set aside by advance "
            "(qaflow held lists them; release them once this configuration is live)",
        ))
    return problems


def _check_version(definitions: Definitions, store: Store, workflow: str, version: int, ids: list[str], label: str) -> list[Problem]:
    current = definitions.workflows.get(workflow)
    where = _version_location(current) if current is not None else Location(label)
    some = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    stored = store.definition(workflow, version)
    if current is not None and current.version == version:
        if stored is not None and stored["digest"] != current.digest:
            return [Problem(where, "error", "version-not-raised",
                            f"{workflow} changed but its version is still {version}, and {len(ids)} instance(s) "
                            f"run on the old text ({some}): raise 'version'")]
        wf = current
    elif stored is None:
        return [Problem(where, "error", "stranded-instances",
                        f"{len(ids)} instance(s) run {workflow} version {version} ({some}), which neither this "
                        "configuration nor the store has")]
    else:
        try:
            wf = compile_stored_workflow(stored["source"], definitions, label=f"{workflow} version {version}")
        except UsageError as exc:
            return [Problem(where, "error", "stranded-instances",
                            f"{len(ids)} instance(s) running {workflow} version {version} ({some}) could no longer "
                            f"be run with this configuration: {exc.message}")]
    return [
        Problem(where, "error", "stranded-instances",
                f"{workflow} version {version}, which {len(ids)} instance(s) run ({some}), starts workflow "
                f"'{child}', which this configuration no longer has")
        for child in sorted(_children(wf)) if child not in definitions.workflows
    ]


def _children(wf: WorkflowDef) -> set[str]:
    actions: list[Any] = [a for t in wf.transitions for a in t.actions]
    for state in wf.states.values():
        actions += [*state.on_enter, *state.on_exit]
    for deadline in wf.deadlines.values():
        actions += list(deadline.on_breach)
    return {a.workflow for a in actions if isinstance(a, StartChild)}


def _version_location(wf: WorkflowDef) -> Location:
    """The ``version:`` line of the workflow's file (where the fix usually goes)."""
    try:
        text = Path(wf.file).read_text(encoding="utf-8")
    except OSError:
        return Location(display_path(Path(wf.file)))
    match = re.search(r"^version:[ \t]*", text, flags=re.M)
    if match is None:
        return Location(display_path(Path(wf.file)))
    line = text.count("\n", 0, match.start()) + 1
    return Location(display_path(Path(wf.file)), line, match.end() - match.start() + 1)
