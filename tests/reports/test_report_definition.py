"""Report definitions: the schema, problems with file:line:col, and the metric language's other options."""

from __future__ import annotations

import json
import shutil
import textwrap

import jsonschema
import pytest
import yaml
from report_world import CONFIG, OCT

from engine import ConfigError, UsageError
from engine.config.loader import KINDS, schema_for
from engine.config.validate import validate_paths
from engine.reports import compute_report, load_report, render


def write(tmp_path, text: str):
    path = tmp_path / "custom.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_report_kind_is_registered_and_the_bundled_report_matches_its_schema():
    assert KINDS["report"] == ("reports", "report.schema.json")
    schema = schema_for("report")
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.validate(yaml.safe_load((CONFIG / "reports" / "qa_report.yaml").read_text()), schema)
    first = (CONFIG / "reports" / "qa_report.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/report.schema.json"


def test_every_schema_property_has_a_description():
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                    missing.append(f"{path}.{key}")
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(schema_for("report"), "")
    assert not missing, missing


def test_validate_reports_schema_problems_with_positions(tmp_path):
    root = tmp_path / "config"
    shutil.copytree(CONFIG, root)
    path = root / "reports" / "qa_report.yaml"
    path.write_text(path.read_text().replace("    kind: count\n", "    kind: cuont\n", 1))
    problems = [p for p in validate_paths([root]) if p.severity == "error"]
    assert problems and problems[0].location.file.endswith("qa_report.yaml") and problems[0].location.line > 1


def test_bad_expression_is_reported_at_its_line_and_column(definitions, tmp_path):
    path = write(tmp_path, """\
        report: custom
        title: Custom
        metrics:
          broken:
            kind: count
            workflow: case_audit
            where: >-
              data.lead.overall === "good"
        """)
    with pytest.raises(ConfigError) as info:
        load_report(definitions, path)
    (problem,) = info.value.problems
    assert problem.location.line == 8 and problem.location.column > 1
    assert problem.code.startswith("expression-")


def test_unknown_workflow_deadline_scale_and_metric_are_errors(definitions, tmp_path):
    path = write(tmp_path, """\
        report: custom
        title: Custom
        metrics:
          a: {kind: count, workflow: case_audits}
          b: {kind: deadlines, workflow: case_audit, deadlines: [lead_submision]}
          c: {kind: distribution, workflow: case_audit, scale: grades, values: {x: data.final.overall}}
        trend:
          series:
            s: {metric: nothing_here}
        presentation:
          charts:
            - {id: x, type: line, title: X, series: [missing]}
        """)
    with pytest.raises(ConfigError) as info:
        load_report(definitions, path)
    codes = sorted(p.code for p in info.value.problems)
    assert codes == ["unknown-deadline", "unknown-metric", "unknown-scale", "unknown-series", "unknown-workflow"]
    assert "did" not in str(info.value) or "lead_submission" in str(info.value)


def test_unknown_report_id_is_a_usage_error(definitions):
    with pytest.raises(UsageError, match="no report 'nope'"):
        load_report(definitions, "nope")


def test_the_rest_of_the_metric_language(world, definitions, tmp_path):
    """count/share with 'by', changes without a scale, workload until a state, bars charts, only some KPIs."""
    path = write(tmp_path, """\
        report: custom
        title: Custom report
        levels:
          team: data.team
        metrics:
          per_team:
            kind: count
            workflow: case_audit
            period_by: data.allocated_on
            by: data.team
          lead_on_time:
            kind: share
            title: Lead audits on time
            workflow: case_audit
            period_by: data.allocated_on
            deadlines: [lead_submission]
            numerator: deadline.on_time
            by: data.team
            detail: true
          lead_on_time_pct:
            kind: share
            workflow: case_audit
            period_by: data.final_on
            deadlines: [lead_submission]
            numerator: deadline.status == "met" and not deadline.late
          any_change:
            kind: changes
            workflow: case_audit
            period_by: data.final_on
            where: data.final != null
            compare: {lead: data.lead.overall}
            to: data.final.overall
          complaint_handlers:
            kind: workload
            workflow: complaint
            people:
              - {person: data.stage1_handler, until_state: [stage1_responded]}
          favour:
            kind: distribution
            workflow: case_audit
            period_by: data.final_on
            favourable: [good]
            values: {overall: data.final.overall}
          some_kpis:
            kind: kpis
            only: [moderation_rate]
            programmes: false
            tolerance: 1
        presentation:
          charts:
            - {id: teams, type: bars, metric: per_team, title: Audits per team}
            - {id: leads, type: bars, metric: lead_on_time, value: pct, title: Lead on time}
        """)
    r = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], report=path, level="team")
    m = r["metrics"]
    assert m["per_team"] == {"assessment_1": 2, "assessment_2": 2}
    assert m["lead_on_time"]["assessment_2"] == {"numerator": 1, "denominator": 2, "pct": 50.0}
    assert m["lead_on_time_pct"] == 66.7  # of the 3 audits final in October, A3's lead was late: 2 of 3
    assert m["any_change"]["lead"] == {"total": 3, "unchanged": 2, "changed": 1, "matrix": {"good": {"good": 1, "requires_improvement": 1},
                                                                                         "inadequate": {"inadequate": 1}}}
    handlers = m["complaint_handlers"]["people"]["QA-2"]["weeks"]
    # QA-2 handled C1 from 2 Oct (begin_stage1 set the field) to 28 Oct and C2 from 5 Oct to 21 Oct
    assert handlers == {"2026-09-28": 1, "2026-10-05": 2, "2026-10-12": 2, "2026-10-19": 2, "2026-10-26": 1}
    assert m["complaint_handlers"]["capacity"] is None
    assert m["favour"]["overall"]["favourable_pct"] == 33.3
    assert list(m["some_kpis"]["indicators"]) == ["moderation_rate"]
    assert m["some_kpis"]["indicators"]["moderation_rate"]["status"] == "red"  # 33.3 against 30 with a tolerance of 1
    assert "programmes" not in m["some_kpis"]
    page = render(r, "html")
    assert page.count("<svg") == 3 and "Audits per team" in page and 'id="chart-kpi-trend-some-kpis"' in page
    json.dumps(r)
