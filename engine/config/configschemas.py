"""The JSON Schemas of one configuration: the package's schemas with the configuration's own vocabularies.

A list a schema shares with the rules (the service areas of a programme) is marked in the package's
schema with ``"x-vocabulary": NAME`` beside its ``enum``. For a configuration whose rules define
vocabulary NAME the ``enum`` becomes its keys, so what ``qaflow validate`` accepts and what an editor
completes are the configuration's terms, not the package's. A configuration without that vocabulary
keeps the package's list. ``qaflow schema --out DIR`` writes these schemas; ``qaflow validate`` says
when the copies in a configuration's ``schemas/`` folder no longer match them (engine/config/validate.py).
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..definitions import Vocabulary
from .paths import bundled_config_dir
from .schemacheck import package_schema

__all__ = [
    "VOCABULARY_KEY", "schema_kinds", "template", "with_vocabularies", "config_schema", "schema_text", "write_schemas",
    "vocabulary_differences",
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
    folder = bundled_config_dir() / "schemas"
    return {p.name[: -len(_SUFFIX)]: p for p in sorted(folder.glob("*" + _SUFFIX))}


def template(kind: str) -> Mapping[str, Any]:
    """The package's schema of ``kind`` as shipped (KeyError for a kind with no schema)."""
    key = (f"file:{kind}", ())
    with _lock:
        found = _made.get(key)
    if found is None:
        made = package_schema(json.loads(schema_kinds()[kind].read_text(encoding="utf-8")))
        with _lock:
            found = _made.setdefault(key, made)
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


@functools.cache
def _names_in(kind: str) -> frozenset[str]:
    """The vocabulary names the package's schema of ``kind`` marks (it never changes: read once)."""
    return frozenset(_named(template(kind)))


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
    terms = tuple(sorted((name, vocabularies[name].keys) for name in _names_in(kind) if name in vocabularies))
    if not terms:
        return base
    key = (kind, terms)
    with _lock:
        found = _made.get(key)
    if found is None:
        made = package_schema(with_vocabularies(base, vocabularies))  # only lists of terms changed
        with _lock:
            found = _made.setdefault(key, made)
    return found


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


def vocabulary_differences(found: Any, wanted: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
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
            yield from vocabulary_differences(found.get(key) if isinstance(found, Mapping) else None, value, path + (str(key),))
    elif isinstance(wanted, list):
        for i, value in enumerate(wanted):
            yield from vocabulary_differences(found[i] if isinstance(found, list) and i < len(found) else None, value, path)
