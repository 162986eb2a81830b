"""The JSON Schemas of one configuration: the package's schemas with the configuration's own vocabularies.

A list a schema shares with the rules (the service areas of a programme) is marked in the package's
schema with ``"x-vocabulary": NAME`` beside its ``enum``. For a configuration whose rules define
vocabulary NAME the ``enum`` becomes its keys, so what ``qaflow validate`` accepts and what an editor
completes are the configuration's terms, not the package's. A configuration without that vocabulary
keeps the package's list. ``qaflow schema --out DIR`` writes these schemas; ``qaflow validate`` says
when the copies in a configuration's ``schemas/`` folder no longer match them.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..definitions import Vocabulary
from ..problems import Location, Problem

__all__ = [
    "VOCABULARY_KEY", "schema_kinds", "template", "with_vocabularies", "config_schema", "vocabularies_of",
    "schema_text", "write_schemas", "stale_schema_problems",
]

#: The key that ties an ``enum`` of a package schema to a vocabulary of the rules.
VOCABULARY_KEY = "x-vocabulary"
_SUFFIX = ".schema.json"

_lock = threading.Lock()
# (kind, the keys of the vocabularies the template names) -> schema: the same terms give the same
# object, so the validator built for it (schemacheck keeps them by object) is built once
_made: dict[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], Mapping[str, Any]] = {}


def schema_kinds() -> dict[str, Path]:
    """Kind -> the package's schema file for it (``workflow``, ``rules``, ``programme``, ...)."""
    from .loader import bundled_config_dir

    folder = bundled_config_dir() / "schemas"
    return {p.name[: -len(_SUFFIX)]: p for p in sorted(folder.glob("*" + _SUFFIX))}


def template(kind: str) -> Mapping[str, Any]:
    """The package's schema of ``kind`` as shipped (KeyError for a kind with no schema)."""
    from .loader import KINDS, schema_for

    if kind in KINDS:
        return schema_for(kind)
    return _read_template(kind)


def _read_template(kind: str) -> Mapping[str, Any]:
    path = schema_kinds()[kind]
    with _lock:
        key = (f"file:{kind}", ())
        found = _made.get(key)
        if found is None:
            found = _made[key] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _named(schema: Any) -> Iterator[str]:
    """The vocabulary names a schema marks, anywhere in it."""
    if isinstance(schema, Mapping):
        name = schema.get(VOCABULARY_KEY)
        if isinstance(name, str):
            yield name
        for value in schema.values():
            yield from _named(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _named(value)


def with_vocabularies(schema: Mapping[str, Any], vocabularies: Mapping[str, Vocabulary]) -> dict[str, Any]:
    """A copy of ``schema`` in which each ``enum`` marked with a vocabulary that ``vocabularies`` has lists its keys."""
    out = copy.deepcopy(dict(schema))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            name = node.get(VOCABULARY_KEY)
            if isinstance(name, str) and name in vocabularies:
                node["enum"] = list(vocabularies[name].keys)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    return out


def config_schema(kind: str, vocabularies: Mapping[str, Vocabulary] | None) -> Mapping[str, Any]:
    """The schema of ``kind`` for a configuration with these vocabularies (None: the package's own)."""
    base = template(kind)
    if not vocabularies:
        return base
    terms = tuple(sorted((name, vocabularies[name].keys) for name in set(_named(base)) if name in vocabularies))
    if not terms:
        return base
    key = (kind, terms)
    with _lock:
        found = _made.get(key)
    if found is None:
        made = with_vocabularies(base, vocabularies)
        with _lock:
            found = _made.setdefault(key, made)
    return found


def vocabularies_of(root: str | Path | None) -> dict[str, Vocabulary]:
    """The vocabularies the rules of configuration ``root`` define (those that compile; no problems reported)."""
    from .loader import read_documents
    from .rules import RulesCompiler

    if root is None or not (Path(root) / "rules").is_dir():
        return {}
    docs, _ = read_documents(Path(root), "rules")
    rules = RulesCompiler()
    for doc in docs:
        rules.add(doc)
    return dict(rules.vocabularies)


def schema_text(schema: Mapping[str, Any]) -> str:
    """A schema as ``qaflow schema`` writes it: JSON, two-space indents, a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(folder: str | Path, vocabularies: Mapping[str, Vocabulary] | None) -> list[Path]:
    """Write every kind's schema for these vocabularies into ``folder``; return the files written.

    A file that already holds the same schema (as JSON, whatever its layout) is left as it is.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in schema_kinds():
        schema = config_schema(kind, vocabularies)
        path = folder / f"{kind}{_SUFFIX}"
        try:
            if json.loads(path.read_text(encoding="utf-8")) == schema:
                continue
        except (OSError, ValueError):
            pass  # missing or not JSON: write it
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schema_problems(root: str | Path, vocabularies: Mapping[str, Vocabulary] | None) -> list[Problem]:
    """A warning for each schema in ``ROOT/schemas/`` that is not the one ``qaflow schema`` writes for this configuration.

    Editors read those files; qaflow checks with the schemas made from the rules, so a stale copy makes the
    editor and ``qaflow validate`` disagree (an editor underlining a new service area that validate accepts).
    """
    from .loader import display_path

    folder = Path(root) / "schemas"
    if not folder.is_dir():
        return []
    problems = []
    fix = f"run 'qaflow --config {display_path(Path(root))} schema --out {display_path(folder)}'"
    for kind in schema_kinds():
        path = folder / f"{kind}{_SUFFIX}"
        if not path.is_file():
            continue
        where = Location(display_path(path), 1, 1)
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            problems.append(Problem(where, "warning", "stale-schema", f"this is not a JSON Schema qaflow can read; {fix}"))
            continue
        wanted = config_schema(kind, vocabularies)
        if found == wanted:
            continue
        differences = list(_vocabulary_differences(found, wanted))
        detail = "; ".join(differences[:3]) if differences else "it differs from the schema of this qaflow version"
        problems.append(Problem(where, "warning", "stale-schema",
                                f"out of date for this configuration ({detail}): editors would disagree with qaflow validate; {fix}"))
    return problems


def _vocabulary_differences(found: Any, wanted: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    """For each vocabulary-marked enum whose terms differ: 'vocabulary services: no 'fostering''."""
    if isinstance(wanted, Mapping):
        name = wanted.get(VOCABULARY_KEY)
        if isinstance(name, str):
            have = found.get("enum") if isinstance(found, Mapping) else None
            have = list(have) if isinstance(have, list) else []
            missing = [k for k in wanted.get("enum", []) if k not in have]
            extra = [k for k in have if k not in wanted.get("enum", [])]
            parts = ([f"no {', '.join(repr(k) for k in missing)}"] if missing else []) + \
                    ([f"{', '.join(repr(k) for k in extra)} not in the rules"] if extra else [])
            if parts:
                yield f"vocabulary {name}: " + " and ".join(parts)
        for key, value in wanted.items():
            yield from _vocabulary_differences(found.get(key) if isinstance(found, Mapping) else None, value, path + (str(key),))
    elif isinstance(wanted, list):
        for i, value in enumerate(wanted):
            yield from _vocabulary_differences(found[i] if isinstance(found, list) and i < len(found) else None, value, path)
