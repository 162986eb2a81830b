"""qaflow when: due dates and their explanations for every duration form the YAML accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main

BASIC = Path(__file__).resolve().parents[1] / "fixtures" / "basic"


def when(*args: str):
    return CliRunner().invoke(main, ["when", *args], catch_exceptions=False)


def test_the_worked_example_from_the_durations_guide():
    result = when("10 working days", "--from", "2026-12-18")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "2027-01-06"
    assert lines[1].startswith("due Wed 6 Jan 2027: 10 working days after Fri 18 Dec 2026")
    assert "skipped Fri 25 Dec 2026: Christmas Day" in lines
    assert "skipped Mon 28 Dec 2026: Boxing Day (observed)" in lines
    assert lines[-1] == "due by the end of Wed 6 Jan 2027 (23:59 Europe/London)"


def test_json_output():
    result = when("10 working days", "--from", "2026-12-18", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["due"] == "2027-01-06"
    assert report["calendar"] == "england" and report["from"] == "2026-12-18"
    assert report["explanation"][-1] == "due by the end of Wed 6 Jan 2027 (23:59 Europe/London)"


def test_calendars_come_from_the_configuration():
    result = CliRunner().invoke(main, ["--config", str(BASIC), "when", "10 working days", "--from", "2026-12-18",
                                       "--calendar", "england_local"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "2027-01-11"
    assert "skipped Tue 29 Dec 2026: local closure: Council shutdown" in result.stdout


@pytest.mark.parametrize(
    ("duration", "start", "due"),
    [
        ("10 working days", "2026-12-18", "2027-01-06"),
        ("1 working day", "2026-12-24", "2026-12-29"),
        ("0 working days", "2026-12-25", "2026-12-25"),
        ("28 days", "2026-10-01", "2026-10-29"),
        ("28 calendar days", "2026-10-01", "2026-10-29"),
        ("3 weeks", "2026-10-01", "2026-10-22"),
        ("1 month", "2027-01-31", "2027-02-28"),
        ("1 month", "2028-01-31", "2028-02-29"),
        ("3 months", "2026-11-30", "2027-02-28"),
        ("1 year", "2028-02-29", "2029-02-28"),
        ("end of week 4", "2026-10-01", "2026-10-28"),
        ("end of month", "2026-02-10", "2026-02-28"),
        ("end of the month", "2026-02-10", "2026-02-28"),
        ("1st of next month", "2026-12-15", "2027-01-01"),
        ("start of next month", "2026-12-15", "2027-01-01"),
        ("end of next month", "2026-12-15", "2027-01-31"),
        ("3 weeks, next working day", "2026-12-04", "2026-12-29"),
        ("3 weeks, roll forward", "2026-12-04", "2026-12-29"),
        ("  10   Working  Days ", "2026-12-18", "2027-01-06"),
        ("10 working days", "2026-12-18T16:30:00+00:00", "2027-01-06"),
    ],
)
def test_every_documented_form(duration: str, start: str, due: str):
    result = when(duration, "--from", start, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["due"] == due


@pytest.mark.parametrize("duration", ["ten days", "-3 days", "3 fortnights", "99999 days", "end of week 5", ""])
def test_a_bad_duration_is_exit_1_listing_the_forms(duration: str):
    result = when(duration, "--from", "2026-12-18")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert repr(duration) in result.stderr or duration in result.stderr
    if "cannot read" in result.stderr:
        assert "N working days" in result.stderr and "end of week N" in result.stderr


def test_a_bad_duration_in_json_is_an_error_object():
    result = when("ten days", "--from", "2026-12-18", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "DurationError"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["3 weeks", "--from", "18/12/2026"], "write it as YYYY-MM-DD"),
        (["3 weeks", "--from", "2026-12-18", "--calendar", "englnd"], "did you mean 'england'?"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = when(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_from_is_a_usage_error():
    result = when("3 weeks")
    assert result.exit_code == 2
    assert "--from" in result.stderr


def test_dates_outside_the_calendar_are_refused_clearly():
    result = when("10 working days", "--from", "2099-01-01")
    assert result.exit_code == 1
    assert "outside calendar" in result.stderr


def test_a_timescale_of_the_rules_is_worked_out_from_its_duration():
    result = CliRunner().invoke(main, ["--config", str(BASIC), "when", "response_time", "--from", "2026-12-18",
                                       "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["due"], report["duration"], report["timescale"]) == ("2027-01-06", "10 working days", "response_time")
    assert report["explanation"][0] == "timescale 'response_time' (config rules): 10 working days; source: local response standard"


def test_a_misspelt_timescale_is_named():
    result = CliRunner().invoke(main, ["--config", str(BASIC), "when", "respons_time", "--from", "2026-12-18"])
    assert result.exit_code == 1  # a duration that cannot be read, as for any other
    assert "did you mean the timescale 'response_time'?" in result.output
