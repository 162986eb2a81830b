"""Property tests: whatever is done to a valid configuration, validate reports problems and never crashes.

Mutations of tests/fixtures/basic: deleted keys, values of the wrong type, renamed states,
garbage bytes, truncation. The result is always exit 0 or 1 with no internal error.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main

BASIC = Path(__file__).resolve().parents[1] / "fixtures" / "basic"
FILES = ["workflows/review.yaml", "workflows/check.yaml", "rules/rules.yaml", "scenarios/review.yaml"]
STATES = ["open", "graded", "checking", "closed", "escalated", "pending", "done"]

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a node of plain YAML data."""
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, prefix + (i,))
    return out


def parent_of(data: Any, path: tuple) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["*", "-", "{data.x}", "__class__", "lambda: 1", "99999 days", "end of week 9", "on", "yes"]),
)


def check(files: dict[str, bytes]) -> None:
    """Write the configuration and validate it through the CLI (which calls engine.config.validate.validate_paths)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "config"
        shutil.copytree(BASIC, root)
        for name, content in files.items():
            (root / name).write_bytes(content)
        result = CliRunner().invoke(main, ["validate", "--format", "json", "--config", str(root)], catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output
        report = json.loads(result.stdout)
        assert report["ok"] is (result.exit_code == 0)
        assert not [p for p in report["problems"] if p["code"] == "internal-error"], report["problems"]
        for p in report["problems"]:
            assert p["severity"] in ("error", "warning") and p["file"] and p["code"] and p["message"]


def original(name: str) -> str:
    return (BASIC / name).read_text(encoding="utf-8")


@SETTINGS
@given(name=st.sampled_from(FILES), pick=st.integers(min_value=0), data=st.data())
def test_deleting_a_key_or_item_never_crashes(name: str, pick: int, data: st.DataObject):
    doc = yaml.safe_load(original(name))
    candidates = [p for p in paths(doc) if p]
    path = candidates[pick % len(candidates)]
    container = parent_of(doc, path)
    del container[path[-1]]
    check({name: yaml.safe_dump(doc, sort_keys=False).encode()})


@SETTINGS
@given(name=st.sampled_from(FILES), pick=st.integers(min_value=0), value=wrong_values)
def test_a_value_of_the_wrong_type_never_crashes(name: str, pick: int, value: Any):
    doc = yaml.safe_load(original(name))
    candidates = paths(doc)
    path = candidates[pick % len(candidates)]
    if path:
        parent_of(doc, path)[path[-1]] = value
    else:
        doc = value
    check({name: yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()})


@SETTINGS
@given(name=st.sampled_from(FILES), old=st.sampled_from(STATES), new=st.sampled_from(STATES + ["renamed", "end", "default", "Open"]),
       which=st.integers(min_value=0, max_value=20))
def test_renaming_a_state_somewhere_never_crashes(name: str, old: str, new: str, which: int):
    text = original(name)
    parts = text.split(old)
    if len(parts) > 1:
        k = which % (len(parts) - 1)
        text = old.join(parts[: k + 1]) + new + old.join(parts[k + 1:])
    check({name: text.encode()})


@SETTINGS
@given(name=st.sampled_from(FILES), at=st.integers(min_value=0), junk=st.binary(min_size=1, max_size=40))
def test_garbage_bytes_never_crash(name: str, at: int, junk: bytes):
    raw = original(name).encode()
    at %= len(raw) + 1
    check({name: raw[:at] + junk + raw[at:]})


@SETTINGS
@given(name=st.sampled_from(FILES), at=st.integers(min_value=0))
def test_truncation_never_crashes(name: str, at: int):
    raw = original(name).encode()
    check({name: raw[: at % (len(raw) + 1)]})


@settings(max_examples=20, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_as_a_workflow_never_crashes(text: str):
    check({"workflows/review.yaml": text.encode("utf-8", "surrogatepass")})


def test_steps_that_are_not_a_list_are_a_schema_problem_not_a_crash():
    doc = yaml.safe_load(original("scenarios/review.yaml"))
    doc["scenarios"][0]["steps"] = 1  # found by the property above
    check({"scenarios/review.yaml": yaml.safe_dump(doc, sort_keys=False).encode()})
