"""State diagrams of workflows (Mermaid ``stateDiagram-v2`` and Graphviz DOT) from the engine's own model.

Every state gets a generated id (``s_`` + its name, made safe), so names Mermaid reserves (``end``,
``default``, ``state``, ``note``, ``direction``...) cannot break the diagram; the name people wrote is
the label (``state "end" as s_end``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .definitions import DeadlineAction, WorkflowDef

__all__ = ["Diagram", "Edge", "build_diagram", "to_mermaid", "to_dot", "render", "FORMATS"]

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


def shorten(text: str, limit: int = MAX_CONDITION) -> str:
    """One line, at most ``limit`` characters (an ellipsis marks the cut); comments dropped."""
    flat = " ".join(" ".join(_without_comment(line) for line in text.splitlines()).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def build_diagram(wf: WorkflowDef) -> Diagram:
    """The states, transitions and deadline starts of one workflow."""
    names = list(wf.states)
    edges: list[Edge] = []
    seen: set[Edge] = set()
    for t in wf.transitions:
        if t.event == "trigger":
            label = t.name  # who fires it says enough; the condition is in the YAML
        elif t.event == "auto":
            label = "auto: " + (shorten(t.guard.source) if t.guard is not None else "always")
        else:
            label = f"breach: {t.name}"
        for source in t.sources:
            edge = Edge(source, t.dest or source, label, t.event)
            if edge not in seen:
                seen.add(edge)
                edges.append(edge)
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


def to_mermaid(diagram: Diagram) -> str:
    ids = diagram.ids
    lines = [f"%% workflow {_mermaid_text(diagram.workflow)} version {diagram.version}: {_mermaid_text(diagram.title)}",
             "stateDiagram-v2"]
    for name in diagram.states:
        lines.append(f'    state "{_mermaid_text(name)}" as {ids[name]}')
    lines.append(f"    [*] --> {ids[diagram.initial]}")
    for edge in diagram.edges:
        lines.append(f"    {ids[edge.source]} --> {ids[edge.target]} : {_mermaid_text(edge.label)}")
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


def render(wf: WorkflowDef, fmt: str = "mermaid") -> str:
    """The diagram of ``wf`` as Mermaid (``mermaid``) or Graphviz (``dot``) text."""
    diagram = build_diagram(wf)
    if fmt == "mermaid":
        return to_mermaid(diagram)
    if fmt == "dot":
        return to_dot(diagram)
    raise ValueError(f"unknown diagram format {fmt!r}; use one of {', '.join(FORMATS)}")
