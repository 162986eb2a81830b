"""F7: malformed input on the command line is exit 1 or 2 with a plain message, never 3 (internal error).

The review's table of causes, replayed: huge integers, lone surrogates, deep nesting, times and
periods outside the years qaflow works with, NaN, and a reader that goes away (broken pipe). The
store-dependent rows (NUL and NaN on PostgreSQL, a damaged SQLite file) are in test_store_values.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from engine.cli import main

DATA = {"case_id": "C-1", "team": "t1", "service": "assessment", "lead_auditor": "TM-01", "peer_auditor": "IRO-02"}


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "f7.db")
    started = CliRunner().invoke(main, ["start", "case_audit", "--db", path, "--actor", "QA-01", "--role", "qa_team",
                                        "--at", "2026-10-01T09:00", "--data", json.dumps(DATA)])
    assert started.exit_code == 0, started.output
    return path


def fire(db: str, *extra: str) -> list[str]:
    return ["fire", "case_audit-000001", "record_file_review", "--db", db, "--actor", "TM-01", *extra]


CASES = {
    "int-5000-digits": (lambda db: fire(db, "--payload", '{"notes": 1' + "0" * 5000 + "}"), 2, "thousands of digits"),
    "lone-surrogate-payload": (lambda db: fire(db, "--payload", '{"notes": "\\ud800"}'), 1, "unpaired surrogate"),
    "lone-surrogate-data": (lambda db: ["start", "case_audit", "--db", db, "--actor", "QA-01", "--role", "qa_team",
                                        "--data", json.dumps({**DATA, "case_id": "\ud800"})], 1, "unpaired surrogate"),
    "nested-3000": (lambda db: fire(db, "--payload", '{"notes": ' + "[" * 3000 + "]" * 3000 + "}"), 2, "nested too deeply"),
    "nested-100": (lambda db: fire(db, "--at", "2026-10-02T09:00", "--payload", '{"notes": ' + "[" * 100 + "]" * 100 + "}"), 1,
                   "nested more than 64 levels deep"),
    "year-1": (lambda db: fire(db, "--payload", '{"notes": "x"}', "--at", "0001-01-01T00:00+00:00"), 2, "outside the years"),
    "year-1-offset": (lambda db: fire(db, "--payload", '{"notes": "x"}', "--at", "0001-01-01T00:30+01:00"), 2, "outside the years"),
    "year-9999": (lambda db: ["advance", "--db", db, "--to", "9999-12-31T23:59-12:00"], 2, "outside the years"),
    "report-0001Q1": (lambda db: ["report", "--period", "0001Q1", "--db", db], 2, "outside the years"),
    "simulate-9999": (lambda db: ["simulate", "-q", "--from", "9999-10-01"], 2, "outside the years"),
    "simulate-a-century": (lambda db: ["simulate", "-q", "--from", "2026-10-01", "--to", "2079-10-01"], 2, "longer than 10 years"),
    "nan": (lambda db: fire(db, "--payload", '{"notes": NaN}'), 2, "NaN is not a JSON number"),
    "spring-gap": (lambda db: fire(db, "--payload", '{"notes": "x"}', "--at", "2027-03-28T01:30"), 2, "does not exist in Europe/London"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_is_a_finding_or_a_usage_error_never_internal(db, case):
    args, code, says = CASES[case]
    before = CliRunner().invoke(main, ["show", "case_audit-000001", "--db", db, "--format", "json"]).stdout
    result = CliRunner().invoke(main, args(db))
    assert result.exit_code == code, result.output
    assert says in result.stderr
    assert "internal error" not in result.output
    assert CliRunner().invoke(main, ["show", "case_audit-000001", "--db", db, "--format", "json"]).stdout == before


def test_a_reader_that_goes_away_ends_the_command_quietly(db):
    # `qaflow show ID | head -c 5`: the reader closes the pipe before the output is written (here at
    # once, while the command is still starting, so that every write meets the closed pipe)
    for command in (["show", "case_audit-000001"], ["list", "--format", "json"]):
        proc = subprocess.Popen([sys.executable, "-m", "engine", *command, "--db", db], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert proc.returncode == 1, err
        assert err == "", err
