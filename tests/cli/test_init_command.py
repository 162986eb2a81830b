"""qaflow init, and a new service area added to the copy as a service manager would add it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import engine
from engine.cli import main
from engine.config.loader import bundled_config_dir


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tree_digest(*roots: Path) -> dict[str, str]:
    """path -> sha256 of every file under the roots (compiled-bytecode caches aside)."""
    out = {}
    for root in roots:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [d for d in subfolders if d != "__pycache__"]
            for name in names:
                path = Path(folder) / name
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


FOSTERING_SCENARIOS = """\
scenarios:
  - name: a fostering audit is allocated and due three weeks later
    workflow: case_audit
    description: Allocated Thu 1 Oct 2026, due Thu 22 Oct (as the bundled case_audit scenarios).
    given:
      at: 2026-10-01T09:00
      actor: qa-1
      roles: [qa_team]
      data: {case_id: C-0901, team: fostering, service: fostering, lead_auditor: TM-FO-1, peer_auditor: IRO-01}
    steps:
      - then:
          state: in_progress
          deadlines:
            lead_submission: {due: 2026-10-22, status: open}
  - name: an Inadequate fostering audit goes to the fostering Head of Service
    workflow: inadequate_review
    description: As the bundled assessment case (final Tue 27 Oct 2026), for the new service area's row.
    given:
      at: 2026-10-27T15:00
      actor: system
      data: {case_id: C-0902, final_on: "2026-10-27", overall: inadequate, team: fostering, service: fostering,
             lead_auditor: TM-FO-1, peer_auditor: IRO-02, moderated: false}
    steps:
      - then:
          state: under_review
          data: {head_of_service: HOS-03, service_director: SD-01}
          deadlines:
            oversight_comment: {due: 2026-10-30, status: open}
"""


def add_fostering(copy: Path) -> None:
    """The README's four steps for a new service area, made by editing the copy's files."""
    vocabularies = copy / "rules" / "vocabularies.yaml"
    text = vocabularies.read_text(encoding="utf-8")
    last = "    - {key: care_leavers, label: Care Leavers Service}\n"
    assert last in text
    vocabularies.write_text(text.replace(last, last + "    - {key: fostering, label: Fostering}\n"), encoding="utf-8")

    programme = (copy / "programmes" / "get_safe.yaml").read_text(encoding="utf-8")
    programme = (programme.replace("get_safe", "fostering").replace("Get Safe", "Fostering")
                 .replace("SM-GS-01", "SM-FO-01").replace("TM-08", "TM-FO-1"))
    (copy / "programmes" / "fostering.yaml").write_text(programme, encoding="utf-8")

    leads = copy / "rules" / "service_leads.yaml"
    text = leads.read_text(encoding="utf-8")
    row = "      - {when: {service: care_leavers},     then: {head_of_service: HOS-03, service_director: SD-01}}\n"
    assert row in text
    leads.write_text(text.replace(row, row + "      - {when: {service: fostering},        then: {head_of_service: HOS-03, service_director: SD-01}}\n"),
                     encoding="utf-8")
    (copy / "scenarios" / "fostering.yaml").write_text(FOSTERING_SCENARIOS, encoding="utf-8")


def test_a_new_service_area_in_a_copy_made_by_init_validates_tests_and_simulates_without_touching_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QAFLOW_CACHE", "0")  # the per-user cache is a file outside the copy too
    package = tree_digest(bundled_config_dir(), Path(engine.__file__).parent)

    made = run("init", "council")
    assert made.exit_code == 0, made.output
    assert "it validates: no errors" in made.stdout
    copy = tmp_path / "council"
    assert files_under(copy) == files_under(bundled_config_dir()) - {p for p in files_under(bundled_config_dir()) if "__" in p} | {"README.md"}
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert "## Adding a service area" in readme and "--config council" in readme

    add_fostering(copy)

    # the schemas in the copy still list the old service areas: validate accepts the programme and says so
    first = json.loads(run("--config", "council", "validate", "--format", "json").stdout)
    assert first["ok"] is True, first["problems"]
    stale = [p for p in first["problems"] if p["code"] == "stale-schema"]
    assert [(p["file"], p["severity"]) for p in stale] == [(os.path.join("council", "schemas", "programme.schema.json"), "warning")]
    assert "vocabulary services: no 'fostering'" in stale[0]["message"]

    wrote = run("--config", "council", "schema", "--out", "council/schemas")
    assert wrote.exit_code == 0, wrote.output
    schema = json.loads((copy / "schemas" / "programme.schema.json").read_text(encoding="utf-8"))
    assert "fostering" in schema["properties"]["service"]["enum"]

    second = run("--config", "council", "validate", "--format", "json")
    assert second.exit_code == 0
    assert json.loads(second.stdout) == {"ok": True, "problems": []}

    tested = run("--config", "council", "test", "-v")
    assert tested.exit_code == 0, tested.output
    assert "PASS" in tested.stdout and "a fostering audit is allocated" in tested.stdout
    assert "an Inadequate fostering audit goes to the fostering Head of Service" in tested.stdout

    simulated = run("--config", "council", "simulate", "--programme", "fostering", "--from", "2026-10-01", "--to", "2026-12-31",
                    "--level", "service", "--format", "json", "-q")
    assert simulated.exit_code == 0, simulated.output
    report = json.loads(simulated.stdout)
    assert "fostering" in report["groups"]
    assert report["by_group"]["fostering"]

    assert tree_digest(bundled_config_dir(), Path(engine.__file__).parent) == package
    assert {p.name for p in tmp_path.iterdir()} == {"council"}


def test_the_same_edit_to_the_package_schema_alone_is_still_refused_and_says_where_the_list_lives(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QAFLOW_CACHE", "0")
    assert run("init", "council").exit_code == 0
    copy = tmp_path / "council"
    programme = (copy / "programmes" / "get_safe.yaml").read_text(encoding="utf-8").replace("service: get_safe", "service: fostering")
    (copy / "programmes" / "get_safe.yaml").write_text(programme, encoding="utf-8")
    schema = copy / "schemas" / "programme.schema.json"
    edited = json.loads(schema.read_text(encoding="utf-8"))
    edited["properties"]["service"]["enum"].append("fostering")
    schema.write_text(json.dumps(edited, indent=2), encoding="utf-8")
    result = json.loads(run("--config", "council", "validate", "--format", "json").stdout)
    errors = [p for p in result["problems"] if p["severity"] == "error"]
    line = programme.splitlines().index("service: fostering") + 1
    assert [(Path(p["file"]).name, p["code"], p["line"]) for p in errors] == [("get_safe.yaml", "schema-enum", line)]
    assert "the terms of vocabulary 'services' in the rules" in errors[0]["message"]
    assert any(p["code"] == "stale-schema" and "'fostering' not in the rules" in p["message"] for p in result["problems"])


@pytest.mark.parametrize("existing", ["file", "folder"])
def test_init_never_writes_over_something_that_is_there(tmp_path, monkeypatch, existing):
    monkeypatch.chdir(tmp_path)
    if existing == "file":
        Path("config").write_text("mine", encoding="utf-8")
    else:
        Path("config").mkdir()
        Path("config", "notes.txt").write_text("mine", encoding="utf-8")
    result = run("init")
    assert result.exit_code == 2
    assert "already exists and is not an empty folder" in result.stderr
    assert files_under(tmp_path) == ({"config"} if existing == "file" else {"config/notes.txt"})


def test_init_without_a_folder_makes_config_which_qaflow_then_finds_by_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QAFLOW_CACHE", "0")
    made = run("init")
    assert made.exit_code == 0, made.output
    assert "'qaflow validate'" in made.stdout  # no --config needed
    assert (tmp_path / "config" / "workflows" / "case_audit.yaml").is_file()
    shown = run("schema")  # the kinds are listed; the configuration read is ./config
    assert shown.exit_code == 0
    assert run("validate").exit_code == 0
