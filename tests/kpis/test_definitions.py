"""The KPI definition language: computed from workflow history or imported, tolerance and benchmarks, checked with positions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import load_config
from engine.config.validate import validate_paths
from engine.kpis import kpi_catalogue

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"


@pytest.fixture
def config(tmp_path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


def add_rules(config: Path, text: str) -> None:
    (config / "rules" / "extra_kpis.yaml").write_text(text, encoding="utf-8")


def problems(config: Path) -> list[tuple[str, str]]:
    return [(f"{Path(p.location.file).name}:{p.location.line}", p.code) for p in validate_paths([config]) if p.severity == "error"]


def test_the_bundled_kpis_default_as_before():
    catalogue = kpi_catalogue(load_config(CONFIG))
    assert catalogue["moderation_rate"].values == "history" and catalogue["moderation_rate"].workflows == ("case_audit",)
    assert catalogue["icpc_within_15_working_days"].values == "imported"
    assert catalogue["icpc_within_15_working_days"].defined_in == "safeguarding_2026_q3"
    assert all(spec.values == "imported" for spec in catalogue.values() if spec.defined_in != "rules")


def test_imported_kpi_with_tolerance_and_benchmarks(config):
    add_rules(config, """\
kpis:
  caseload_per_social_worker:
    title: Average caseload per social worker
    values: imported
    unit: number
    direction: lower_is_better
    target: 18
    tolerance: 2
    benchmarks:
      england: {value: 16.3, period: FY2024/25, source: "published workforce statistics (example)"}
      statistical_neighbours: {value: 17.1}
  referrals_rate:
    title: Referrals per 10,000 children
    unit: rate_per_10000
    direction: lower_is_better
    benchmarks: [england, statistical_neighbours]
""")
    assert problems(config) == []
    catalogue = kpi_catalogue(load_config(config))
    caseload = catalogue["caseload_per_social_worker"]
    assert (caseload.values, caseload.unit, caseload.target, caseload.tolerance) == ("imported", "number", 18.0, 2.0)
    assert [(b.name, b.value, b.period) for b in caseload.benchmarks] == [("england", 16.3, "FY2024/25"), ("statistical_neighbours", 17.1, "")]
    assert catalogue["referrals_rate"].values == "imported"  # no workflow: imported
    assert [b.name for b in catalogue["referrals_rate"].benchmarks] == ["england", "statistical_neighbours"]


def test_a_kpi_cannot_be_both(config):
    add_rules(config, """\
kpis:
  both:
    title: Both
    values: imported
    workflow: case_audit
    numerator: data.final != null
    unit: percent
    direction: higher_is_better
  neither:
    title: Neither
    values: history
    unit: percent
    direction: higher_is_better
""")
    assert sorted(problems(config)) == [
        ("extra_kpis.yaml:11", "kpi-without-workflow"), ("extra_kpis.yaml:5", "imported-kpi-computes"), ("extra_kpis.yaml:6", "imported-kpi-computes")]
    add_rules(config, """\
kpis:
  bad_unit:
    title: Bad unit
    unit: percentage
    direction: higher_is_better
    benchmarks: [scotland]
    tolerance: -1
""")
    assert sorted(problems(config)) == [("extra_kpis.yaml:4", "schema-enum"), ("extra_kpis.yaml:6", "schema-enum"), ("extra_kpis.yaml:7", "schema-invalid")]


def edit_programme(config: Path, old: str, new: str, name: str = "assessment.yaml") -> None:
    path = config / "programmes" / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_programme_kpis_are_checked(config):
    edit_programme(config, "  - {kpi: moderation_rate, defined_in: rules, target: 30, direction: lower_is_better, unit: percent}",
                   "  - {kpi: moderation_rates, defined_in: rules, target: 30, direction: lower_is_better, unit: percent}\n"
                   "  - {kpi: share_inadequate, defined_in: rules, target: 10, direction: lower_is_better, unit: count, values: imported}\n"
                   "  - {kpi: moderation_on_time, defined_in: programme, title: x, computed_from: x, source: x, target: 1,"
                   " direction: higher_is_better, unit: percent}")
    edit_programme(config, "    unit: percent\n", "    unit: count\n", name="mash.yaml")  # contact decisions: a count here, a percentage...
    shutil.copy(config / "programmes" / "mash.yaml", config / "programmes" / "mash_q4.yaml")
    edit_programme(config, "programme: mash_2026_q3", "programme: mash_2026_q4", name="mash_q4.yaml")
    edit_programme(config, "    unit: count\n", "    unit: percent\n", name="mash_q4.yaml")  # ... and a percentage next quarter
    assert sorted(problems(config)) == [
        ("assessment.yaml:58", "unknown-kpi"), ("assessment.yaml:59", "kpi-unit-differs"), ("assessment.yaml:59", "kpi-values-in-rules"),
        ("assessment.yaml:60", "kpi-defined-twice"), ("mash_q4.yaml:57", "kpi-unit-differs")]
