"""A corpus of broken configuration: each mistake is reported with its code, line and column, never a traceback.

Every file (or mini configuration folder) under ``broken/`` starts with a line
``# expect: CODE LINE:COL, CODE LINE:COL`` (or ``# expect: nothing``) naming the problems that file
must produce. Single files are checked together with tests/fixtures/basic, as ``qaflow validate``
does for a file outside a configuration folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.config.yamlsource import MAX_ALIAS_NODES

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "broken"
BASIC = HERE.parent / "fixtures" / "basic"
EXPECT = re.compile(r"^# expect: (?P<what>.+)$")
ITEM = re.compile(r"^(?P<code>[a-z][a-z0-9-]*) (?P<line>\d+):(?P<col>\d+)$")


def expectations(path: Path) -> set[tuple[str, str, int, int]]:
    """(file name, code, line, column) from the first line of each YAML file under ``path``."""
    files = [path] if path.is_file() else sorted(path.rglob("*.yaml"))
    found = set()
    for f in files:
        first = f.read_bytes().split(b"\n", 1)[0].decode("utf-8")
        match = EXPECT.match(first)
        assert match, f"{f} must start with '# expect: ...'"
        if match["what"].strip() == "nothing":
            continue
        for item in match["what"].split(","):
            m = ITEM.match(item.strip())
            assert m, f"{f}: cannot read expectation {item!r}"
            found.add((f.name, m["code"], int(m["line"]), int(m["col"])))
    return found


CASES = sorted(p for p in BROKEN.iterdir() if p.suffix == ".yaml" or p.is_dir())


def validate(*args: str):
    return CliRunner().invoke(main, ["--config", str(BASIC), "validate", "--format", "json", *args], catch_exceptions=False)


def test_the_corpus_covers_at_least_forty_mistakes():
    assert len(CASES) >= 40
    codes = {code for case in CASES for _, code, _, _ in expectations(case)}
    assert len(codes) >= 40, sorted(codes)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_each_mistake_is_reported_where_it_was_made(case: Path):
    wanted = expectations(case)
    assert wanted, f"{case} expects nothing"
    result = validate(str(case))
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    got = {(Path(p["file"]).name, p["code"], p["line"], p["column"]) for p in report["problems"]}
    errors = {(Path(p["file"]).name, p["code"], p["line"], p["column"]) for p in report["problems"] if p["severity"] == "error"}
    assert wanted <= got, f"missing {sorted(wanted - got)}; got {report['problems']}"
    assert errors <= wanted, f"unexpected errors {sorted(errors - wanted)}"
    assert not any(p["code"] == "internal-error" for p in report["problems"])
    assert report["ok"] is (not errors)
    assert result.exit_code == (1 if errors else 0)
    for p in report["problems"]:
        assert "\n" not in p["message"]
        assert p["message"][0].islower() or p["message"][0] in "'\"", p["message"]


def test_text_output_is_one_line_per_problem_sorted():
    result = CliRunner().invoke(main, ["--config", str(BASIC), "validate", str(BROKEN / "unknown_trigger.yaml")], catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        (f"{lines[0].split(':')[0]}:16:3: warning: trigger 'finish' is declared but no transition uses it, so firing it "
         "is always refused; add a transition with 'trigger: finish', or remove it [unused-trigger]"),
        (f"{lines[0].split(':')[0]}:24:14: error: unknown trigger 'finsh' (declare it under 'triggers:'); did you mean "
         "'finish'? [unknown-trigger]"),
    ]
    assert lines[0].split(":")[0].endswith("unknown_trigger.yaml")
    assert "1 error, 1 warning" in result.stderr


def test_several_cases_at_once_are_one_sorted_report():
    some = CASES[::6]
    result = validate(*map(str, some))
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    keys = [(p["file"], p["line"], p["column"], p["code"]) for p in problems]
    assert keys == sorted(keys)
    expected = set().union(*(expectations(c) for c in some))
    got = {(Path(p["file"]).name, p["code"], p["line"], p["column"]) for p in problems}
    assert expected <= got


def test_an_oversized_file_is_refused_without_reading_it(tmp_path: Path):
    big = tmp_path / "big.yaml"
    big.write_text("workflow: big\n" + "# padding\n" * 120_000)
    result = validate(str(big))
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert [(p["code"], p["line"], p["column"]) for p in problems] == [("file-too-large", 1, 1)]


def test_the_alias_bomb_is_stopped_before_it_expands():
    text = (BROKEN / "alias_bomb.yaml").read_text()
    assert MAX_ALIAS_NODES < 9 ** 6  # the file really would expand past the limit
    assert text.count("*") > 0


@pytest.mark.parametrize("blob", [b"\x00\x01\x02", b"\xff" * 100, bytes(range(256)), b"key: [unclosed", b"- - - -", b"\t\t\t"])
def test_garbage_never_crashes(tmp_path: Path, blob: bytes):
    path = tmp_path / "workflows"
    path.mkdir()
    (path / "junk.yaml").write_bytes(blob)
    result = validate(str(path / "junk.yaml"))
    assert result.exit_code in (0, 1)
    assert not any(p["code"] == "internal-error" for p in json.loads(result.stdout)["problems"])
