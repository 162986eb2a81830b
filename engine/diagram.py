"""State diagrams of workflows (Mermaid ``stateDiagram-v2`` and Graphviz DOT) from the engine's own model.

Every state gets a generated id (``s_`` + its name, made safe), so names Mermaid reserves (``end``,
``default``, ``state``, ``note``, ``direction``...) cannot break the diagram; the name people wrote is
the label (``state "end" as s_end``).

Every transition is one arrow (a transition from several states, one arrow from each). Mermaid's layout
draws only one loop per state (each loop's helper nodes are named after the state, so a second loop
replaces the first): a state with several transitions that stay in it gets a small choice point
(``s_NAME__stays``) that each of them enters, with one unlabelled arrow back to the state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .definitions import DeadlineAction, TransitionDef, WorkflowDef

__all__ = ["Diagram", "Edge", "build_diagram", "edge_label", "to_mermaid", "to_dot", "render", "FORMATS"]

#: format name -> file suffix
FORMATS = {"mermaid": ".mmd", "dot": ".dot"}
#: Longest condition shown on an edge before it is shortened with an ellipsis.
MAX_CONDITION = 40


@dataclass(frozen=True)
class Edge:
    source: str  # state name
    target: str  # state name (the same for transitions that stay in their state)
    label: str
    kind: str  # "trigger" | "auto" | "breach"

    @property
    def stays(self) -> bool:
        return self.source == self.target


@dataclass
class Diagram:
    """What a diagram shows, independent of the output format."""

    workflow: str
    version: int
    title: str
    states: list[str]
    initial: str
    terminals: list[str]
    edges: list[Edge]
    notes: dict[str, list[str]] = field(default_factory=dict)  # state -> deadline lines
    ids: dict[str, str] = field(default_factory=dict)  # state -> safe id


def _safe_ids(names: list[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = "s_" + (re.sub(r"[^A-Za-z0-9_]", "_", name) or "state")
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        ids[name] = candidate
    return ids


def _without_comment(line: str) -> str:
    """A condition line without its ``# comment`` (a ``#`` inside quotes is text)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            return line[:i]
    return line


def shorten(text: str, limit: int | None = MAX_CONDITION) -> str:
    """One line, at most ``limit`` characters (an ellipsis marks the cut; ``None``: no limit); comments dropped."""
    flat = " ".join(" ".join(_without_comment(line) for line in text.splitlines()).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def edge_label(t: TransitionDef, detail: bool = False) -> str:
    """What an arrow says: the transition's ``title``, else its trigger, ``auto`` or ``breach: DEADLINE``;
    with ``detail``, its condition follows in brackets (comments dropped, on one line)."""
    if t.title:
        label = t.title
    elif t.event == "trigger":
        label = t.name
    elif t.event == "auto":
        label = "auto"
    else:
        label = f"breach: {t.name}"
    if detail and t.guard is not None:
        label += f" [{shorten(t.guard.source, limit=None)}]"
    return label


def build_diagram(wf: WorkflowDef, detail: bool = False) -> Diagram:
    """The states, transitions (one edge per transition and state it leaves) and deadline starts of one
    workflow; ``detail`` adds each transition's condition to its label."""
    names = list(wf.states)
    edges = [Edge(source, t.dest or source, edge_label(t, detail), t.event) for t in wf.transitions for source in t.sources]
    notes: dict[str, list[str]] = {}

    def note(state: str, deadline: str) -> None:
        defn = wf.deadlines.get(deadline)
        line = f"starts {deadline}" + (f": {defn.duration.text}" if defn is not None else "")
        if defn is not None and defn.reminders:  # reminders are alerts, not transitions: say them with the clock
            line += "; reminders " + ", ".join(
                f"{r.before.text} before" if r.before is not None else f"{r.after.text if r.after else ''} after"
                for r in defn.reminders)
        if line not in notes.setdefault(state, []):
            notes[state].append(line)

    for name, state in wf.states.items():
        for action in state.on_enter:
            if isinstance(action, DeadlineAction) and action.op == "start":
                note(name, action.deadline)
    for t in wf.transitions:
        for action in t.actions:
            if isinstance(action, DeadlineAction) and action.op == "start":
                for source in t.sources:
                    note(t.dest or source, action.deadline)
    return Diagram(
        workflow=wf.id,
        version=wf.version,
        title=wf.title,
        states=names,
        initial=wf.initial,
        terminals=[n for n in names if wf.states[n].terminal],
        edges=edges,
        notes=notes,
        ids=_safe_ids(names),
    )


# --------------------------------------------------------------------------- Mermaid


def _mermaid_text(text: str) -> str:
    """Text safe inside a Mermaid label: no quotes, statement separators, comments or line breaks."""
    text = " ".join(str(text).split())
    for bad, good in (('"', "'"), (";", ","), ("%%", "%"), ("#", "no."), ("{", "("), ("}", ")")):
        text = text.replace(bad, good)
    return text


def stays_id(diagram: Diagram, state: str) -> str:
    """The id of the choice point that a state's transitions which stay in it go through (see the module)."""
    base = diagram.ids[state] + "__stays"
    taken = set(diagram.ids.values())
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def to_mermaid(diagram: Diagram) -> str:
    ids = diagram.ids
    lines = [f"%% workflow {_mermaid_text(diagram.workflow)} version {diagram.version}: {_mermaid_text(diagram.title)}",
             "stateDiagram-v2"]
    for name in diagram.states:
        lines.append(f'    state "{_mermaid_text(name)}" as {ids[name]}')
    loops: dict[str, int] = {}
    for edge in diagram.edges:
        if edge.stays:
            loops[edge.source] = loops.get(edge.source, 0) + 1
    via = {name: stays_id(diagram, name) for name, count in loops.items() if count > 1}
    for choice in via.values():
        lines.append(f"    state {choice} <<choice>>")
    lines.append(f"    [*] --> {ids[diagram.initial]}")
    for edge in diagram.edges:
        target = via.get(edge.source, ids[edge.target]) if edge.stays else ids[edge.target]
        lines.append(f"    {ids[edge.source]} --> {target} : {_mermaid_text(edge.label)}")
    for name, choice in via.items():
        lines.append(f"    {choice} --> {ids[name]}")
    for name in diagram.terminals:
        lines.append(f"    {ids[name]} --> [*]")
    for name, items in diagram.notes.items():
        lines.append(f"    note right of {ids[name]}")
        for item in items:
            lines.append(f"        {_mermaid_text(item)}")
        lines.append("    end note")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Graphviz DOT


def _dot_string(text: str) -> str:
    return '"' + " ".join(str(text).split()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(diagram: Diagram) -> str:
    ids = diagram.ids
    lines = [
        f"digraph {_dot_string(diagram.workflow)} {{",
        f"    label={_dot_string(f'{diagram.title} (workflow {diagram.workflow}, version {diagram.version})')};",
        "    labelloc=t;",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    "__start" [shape=point, width=0.15, label=""];',
    ]
    for name in diagram.states:
        extra = ", peripheries=2" if name in diagram.terminals else ""
        lines.append(f"    {_dot_string(ids[name])} [label={_dot_string(name)}{extra}];")
    lines.append(f'    "__start" -> {_dot_string(ids[diagram.initial])};')
    for edge in diagram.edges:
        style = {"auto": ", style=dashed", "breach": ", style=dashed, color=red, fontcolor=red"}.get(edge.kind, "")
        lines.append(f"    {_dot_string(ids[edge.source])} -> {_dot_string(ids[edge.target])} [label={_dot_string(edge.label)}{style}];")
    for i, (name, items) in enumerate(diagram.notes.items()):
        note_id = _dot_string(f"__note_{i}")
        label = "\\n".join(_dot_string(item)[1:-1] for item in items)
        lines.append(f'    {note_id} [shape=note, style="", fontsize=10, label="{label}"];')
        lines.append(f"    {note_id} -> {_dot_string(ids[name])} [style=dotted, arrowhead=none];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(wf: WorkflowDef, fmt: str = "mermaid", detail: bool = False) -> str:
    """The diagram of ``wf`` as Mermaid (``mermaid``) or Graphviz (``dot``) text; ``detail`` adds each
    transition's condition to its label."""
    diagram = build_diagram(wf, detail)
    if fmt == "mermaid":
        return to_mermaid(diagram)
    if fmt == "dot":
        return to_dot(diagram)
    raise ValueError(f"unknown diagram format {fmt!r}; use one of {', '.join(FORMATS)}")
