"""open_store: the one place a user's --db becomes a store; a place that cannot be used is a clear UsageError."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine import UsageError
from engine.cli import main
from engine.store.open import open_store


def test_a_sqlite_file_in_a_missing_folder_is_a_usage_error_naming_it(tmp_path):
    where = tmp_path / "no" / "such" / "folder" / "qaflow.db"
    with pytest.raises(UsageError, match=r"cannot open the store '.*qaflow\.db': unable to open database file"):
        open_store(where)
    assert not (tmp_path / "no").exists()


def test_a_postgresql_server_that_does_not_answer_is_a_usage_error_without_the_password():
    with pytest.raises(UsageError) as caught:
        open_store("postgresql://qa:s3cret-pw@127.0.0.1:1/qaflow")  # port 1: refused at once
    assert "cannot open the store 'postgresql://qa:***@127.0.0.1:1/qaflow'" in caught.value.message
    assert "s3cret-pw" not in caught.value.message


def test_the_cli_says_so_and_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["start", "case_audit", "--db", str(tmp_path / "missing" / "x.db"), "--actor", "QA-01"])
    assert result.exit_code == 2
    assert "error: cannot open the store" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["show", "case_audit-000001"], ["list"], ["outbox"], ["advance", "--to", "2026-12-01"],
                                     ["fire", "case_audit-000001", "withdraw_audit", "--actor", "QA-01"]])
def test_commands_that_read_a_store_do_not_make_one_from_a_mistyped_name(tmp_path, command):
    missing = tmp_path / "qaflwo.db"
    result = CliRunner().invoke(main, [*command, "--db", str(missing)])
    assert result.exit_code == 2, result.output
    assert f"no store at '{missing}'" in result.stderr
    assert not missing.exists()


def test_start_makes_a_new_store(tmp_path):
    new = tmp_path / "new.db"
    result = CliRunner().invoke(main, ["start", "feedback_survey", "--db", str(new), "--actor", "QA-01", "--role", "qa_team",
                                       "--data", ('{"case_id": "C-0001", "service": "safeguarding", "point": "after_cp_conference", '
                                                  '"respondent": "parent"}'),
                                       "--at", "2026-12-01T10:00"])
    assert result.exit_code == 0, result.output
    assert new.is_file()
    assert result.stdout.splitlines()[0] == "id: feedback_survey-000001"
    shown = CliRunner().invoke(main, ["show", "feedback_survey-000001", "--db", str(new)])
    assert shown.exit_code == 0, shown.output
