"""qaflow validate: every problem in one run, sorted, as FILE:LINE:COL lines or JSON; exit 0 or 1."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from engine.cli import main

TESTS = Path(__file__).resolve().parents[1]
BASIC = TESTS / "fixtures" / "basic"
BUNDLED = TESTS.parent / "config"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<message>.+) \[(?P<code>[a-z0-9-]+)\]$")


def line_of(path: Path, needle: str) -> int:
    """The 1-based line on which ``needle`` is written."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_bundled_configuration_is_valid():
    result = invoke("validate", str(BUNDLED))
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.stderr or "no problems found" in result.stderr


def test_default_path_is_the_config_folder_and_warnings_exit_0():
    result = invoke("--config", str(BASIC), "validate")
    assert result.exit_code == 0
    found = [LINE.match(line) for line in result.stdout.splitlines()]
    assert all(m and m["severity"] == "warning" and m["file"].endswith("review.yaml") for m in found)
    assert [(m["code"], m["line"], m["col"]) for m in found] == [("open-start", "1", "11"), ("unused-trigger", "39", "3")]
    assert result.stderr.strip() == "0 errors, 2 warnings"


def test_json_shape(tmp_path: Path):
    root = tmp_path / "config"
    shutil.copytree(BASIC, root)
    review = root / "workflows" / "review.yaml"
    text = review.read_text().replace("    to: escalated", "    to: escalatd")
    review.write_text(text.replace("from: graded\n    to: closed", "from: graded\n    to: clsed"))
    result = invoke("--format", "json", "validate", str(root))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "problems"} and report["ok"] is False
    assert all(set(p) == {"file", "line", "column", "severity", "code", "message"} for p in report["problems"])
    errors = [(p["code"], p["line"]) for p in report["problems"] if p["severity"] == "error"]
    assert errors == [("unknown-state", line_of(review, "to: clsed")), ("unknown-state", line_of(review, "to: escalatd"))]
    assert "did you mean 'escalated'?" in report["problems"][-1]["message"]


def test_a_single_file_in_a_configuration_folder_is_checked_with_its_neighbours(tmp_path: Path):
    root = tmp_path / "config"
    shutil.copytree(BASIC, root)
    (root / "rules" / "rules.yaml").write_text((root / "rules" / "rules.yaml").read_text().replace("  band:", "  bands:"))
    result = invoke("validate", str(root / "workflows" / "review.yaml"), "--format", "json")
    problems = json.loads(result.stdout)["problems"]
    line = line_of(root / "workflows" / "review.yaml", "rule: band")
    assert [(p["code"], p["line"]) for p in problems if p["severity"] == "error"] == [("unknown-rule", line)]
    assert all(p["file"].endswith("review.yaml") for p in problems)
    # a kind folder: each file in it
    result = invoke("validate", str(root / "workflows"), "--format", "json")
    assert {Path(p["file"]).name for p in json.loads(result.stdout)["problems"]} == {"review.yaml"}


def test_several_paths_one_sorted_report(tmp_path: Path):
    broken = TESTS / "config" / "broken"
    result = invoke("--config", str(BASIC), "validate", str(broken / "wrong_type.yaml"), str(broken / "dead_end_state.yaml"), str(BASIC))
    assert result.exit_code == 1
    keys = []
    for line in result.stdout.splitlines():
        m = LINE.match(line)
        assert m, line
        keys.append((m["file"], int(m["line"]), int(m["col"])))
    assert keys == sorted(keys) and len(keys) == 5  # three problems in the broken files, and the basic review's two warnings


def test_missing_path_is_a_finding_not_a_crash(tmp_path: Path):
    result = invoke("validate", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "does not exist [no-such-file]" in result.stdout


def test_no_colour_codes_when_not_asked(tmp_path: Path):
    result = invoke("--config", str(BASIC), "validate", "--color", "never")
    assert "\x1b[" not in result.stdout + result.stderr


def test_programmes_reports_and_simulation_models_are_checked_too(tmp_path: Path):
    root = tmp_path / "config"
    shutil.copytree(BUNDLED, root)
    broken = []
    for folder in ("programmes", "reports", "simulation"):
        files = sorted((root / folder).glob("*.yaml")) if (root / folder).is_dir() else []
        if files:
            with files[0].open("a") as handle:
                handle.write("not_a_key: 1\n")
            broken.append((files[0].name, len(files[0].read_text().splitlines())))
    if not broken:
        import pytest

        pytest.skip("the bundled configuration has no programmes, reports or simulation models yet")
    result = invoke("validate", str(root), "--format", "json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert sorted((Path(p["file"]).name, p["line"]) for p in problems if p["code"] == "schema-unknown-key") == sorted(broken)
