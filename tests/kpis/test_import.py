"""qaflow kpi import: files checked whole against the configuration's KPIs, refused with row and column, stored all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import MemoryStore, load_config
from engine.kpis import ImportRefused, import_kpi_file, import_kpi_values

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
EXAMPLE = ROOT / "docs" / "examples" / "kpi_extract.csv"
HEADER = "kpi,period,level,level_id,numerator,denominator,value,england,statistical_neighbours,region,benchmark_period,source"
GOOD = "assessments_within_45_working_days,2026-10,service,assessment,65,76,85.5,82.9,85.6,83.4,FY2024/25,Mosaic"
AT = "2027-01-05T09:00"


@pytest.fixture(scope="module")
def definitions():
    return load_config(CONFIG)


def csv_file(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "extract.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def refused(definitions, path: Path) -> list:
    store = MemoryStore()
    with pytest.raises(ImportRefused) as caught:
        import_kpi_file(store, definitions, path, at=AT)
    assert store.kpi_values() == []  # nothing stored
    assert caught.value.exit_code == 1
    return caught.value.problems


def one(definitions, tmp_path, *rows: str, **kw) -> tuple[str, str]:
    """The code and place of the only problem in a file with these rows."""
    problems = refused(definitions, csv_file(tmp_path, *rows, **kw))
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0].code, problems[0].where()


# --------------------------------------------------------------------------- what is stored


def test_the_example_extract_imports(definitions):
    store = MemoryStore()
    result = import_kpi_file(store, definitions, EXAMPLE, at=AT)
    assert len(result.stored) == 116 and result.replaced == () and result.added == 116
    assert result.summary() == ("kpi_extract.csv: stored 116 value(s) of 18 KPI(s), 2026-07-01 to 2026-12-31: "
                                "116 new, 0 replacing what was stored")
    stored = store.kpi_values("assessments_within_45_working_days", level="service", level_id="assessment")
    assert [v.period for v in stored] == ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    oct_ = stored[3]
    assert (oct_.numerator, oct_.denominator, oct_.value, oct_.england, oct_.statistical_neighbours, oct_.region) == (65, 76, 85.5, 82.9, 85.6, 83.4)
    assert (oct_.benchmark_period, oct_.imported_at, oct_.imported_from) == ("FY2024/25", "2027-01-05T09:00:00+00:00", "kpi_extract.csv")
    quarter = store.kpi_values("cla_long_term_stability", start=OCT_FIRST, end=DEC_LAST)
    assert "FY2026/27-Q3" in [v.period for v in quarter]


OCT_FIRST, DEC_LAST = __import__("datetime").date(2026, 10, 1), __import__("datetime").date(2026, 12, 31)


def test_a_reimport_replaces_and_says_so(definitions, tmp_path):
    store = MemoryStore()
    import_kpi_file(store, definitions, csv_file(tmp_path, GOOD), at=AT)
    again = import_kpi_file(store, definitions, csv_file(tmp_path, GOOD), at=AT)
    assert again.unchanged == 1 and again.replacements() == ["assessments_within_45_working_days service assessment 2026-10: the same figures"]
    changed = GOOD.replace(",65,76,85.5,", ",66,76,86.8,")
    result = import_kpi_file(store, definitions, csv_file(tmp_path, changed), at="2027-02-01T09:00")
    assert result.summary().endswith("0 new, 1 replacing what was stored")
    assert result.replacements() == ["assessments_within_45_working_days service assessment 2026-10: was 85.5 (65 of 76), now 86.8 (66 of 76)"]
    [stored] = store.kpi_values()
    assert (stored.value, stored.imported_at) == (86.8, "2027-02-01T09:00:00+00:00")


def test_the_same_days_written_another_way_are_the_same_period(definitions, tmp_path):
    store = MemoryStore()
    quarter = "assessments_within_45_working_days,{},service,assessment,190,220,,,,,,"
    import_kpi_file(store, definitions, csv_file(tmp_path, quarter.format("FY2026/27-Q3")), at=AT)
    result = import_kpi_file(store, definitions, csv_file(tmp_path, quarter.format("CY2026-Q4")), at=AT)
    assert len(result.replaced) == 1 and [v.period for v in store.kpi_values()] == ["CY2026-Q4"]


def test_a_percentage_from_its_numerator_and_denominator(definitions, tmp_path):
    store = MemoryStore()
    rows = ["re_referrals_within_12_months,2026-10,service,mash,26,131,,,,,,",
            "re_referrals_within_12_months,2026-11,service,mash,0,0,,,,,,",  # nothing counted: no value, not 0%
            "re_referrals_within_12_months,2026-12,service,mash,,,19.0,,,,,"]
    import_kpi_file(store, definitions, csv_file(tmp_path, *rows), at=AT)
    assert [(v.value, v.numerator, v.denominator) for v in store.kpi_values()] == [(19.8, 26, 131), (None, 0, 0), (19.0, None, None)]


def test_spreadsheet_habits_are_read(definitions, tmp_path):
    """A byte-order mark, headers in other case and spacing, '85.5%', thousands separators, trailing blank rows,
    and the statistical shorthand (c, x, z) for a benchmark that is not published."""
    path = tmp_path / "excel.csv"
    text = ("\ufeffKPI,Period,Level,Level ID,Numerator,Denominator,Value,England,Statistical Neighbours\r\n"
            "cp_visits_within_10_working_days,2026-10,service,safeguarding,\"1,520\",\"1,660\",91.6%,x,c\r\n"
            ",,,,,,,,\r\n\r\n")
    path.write_bytes(text.encode("utf-8"))
    store = MemoryStore()
    import_kpi_file(store, definitions, path, at=AT)
    [v] = store.kpi_values()
    assert (v.numerator, v.denominator, v.value, v.england, v.statistical_neighbours) == (1520, 1660, 91.6, None, None)


def test_json_files_and_pushed_values(definitions, tmp_path):
    store = MemoryStore()
    result = import_kpi_file(store, definitions, ROOT / "docs" / "examples" / "kpi_values.json", at=AT)
    assert [v.period for v in result.stored] == ["2027-01", "2027-01", "FY2026/27-Q4"]
    assert result.stored[0].value == 91.2 and result.stored[0].source.startswith("Case management system")
    pushed = import_kpi_values(store, definitions, [{"kpi": "icpc_within_15_working_days", "period": "2027-01", "level": "service",
                                                     "level_id": "safeguarding", "numerator": 18, "denominator": 20}], origin="mosaic-feed", at=AT)
    assert pushed.stored[0].value == 90.0 and pushed.stored[0].imported_from == "mosaic-feed"
    with pytest.raises(ImportRefused) as caught:
        import_kpi_values(store, definitions, [{"kpi": "icpc_within_15_working_days", "period": "2027-02", "level": "service",
                                                "level_id": "safeguarding", "value": 90},
                                               {"kpi": "icpc_within_15_working_days", "period": "2027-13", "value": 90}], origin="feed")
    assert [str(p) for p in caught.value.problems] == [
        ("item 2, field 'period': period '2027-13' cannot be read: month 13 does not exist; write 2026-10 (a month), FY2026/27-Q3 "
        "(a financial quarter), CY2026-Q3 (a calendar quarter), FY2026/27, CY2026 or 2026-10-01..2026-10-15 [bad-period]")]
    assert len(store.kpi_values()) == 4  # the refused list stored nothing


def test_a_dry_run_stores_nothing(definitions, tmp_path):
    store = MemoryStore()
    import_kpi_file(store, definitions, csv_file(tmp_path, GOOD), at=AT)
    result = import_kpi_file(store, definitions, EXAMPLE, at=AT, dry_run=True)
    assert result.dry_run and len(result.replaced) == 1 and result.summary().startswith("kpi_extract.csv: would store 116")
    assert len(store.kpi_values()) == 1


def test_every_store_takes_an_import(definitions, backend):
    store = backend.open()
    result = import_kpi_file(store, definitions, EXAMPLE, at=AT)
    assert len(backend.open().kpi_values()) == 116
    assert import_kpi_file(store, definitions, EXAMPLE, at=AT).unchanged == 116
    assert len(result.stored) == 116


# --------------------------------------------------------------------------- refusals, one kind at a time


def test_unknown_kpi(definitions, tmp_path):
    problems = refused(definitions, csv_file(tmp_path, GOOD.replace("assessments_within_45_working_days", "assesments_within_45_working_days")))
    assert problems[0].code == "unknown-kpi" and problems[0].where() == "row 2, column A (kpi)"
    assert "did you mean 'assessments_within_45_working_days'?" in problems[0].message


def test_a_kpi_qaflow_computes_is_not_imported(definitions, tmp_path):
    assert one(definitions, tmp_path, GOOD.replace("assessments_within_45_working_days", "moderation_rate")) == ("computed-kpi", "row 2, column A (kpi)")


@pytest.mark.parametrize(("period", "words"), [("2026-13", "month 13 does not exist"), ("October", "cannot be read"),
                                               ("2026Q3", "write FY2026/27-Q3 for Q3 2026/27 (Oct-Dec 2026) or CY2026-Q3"),
                                               ("2026/28Q1", "should be 2026/27"), ("", "no period given"),
                                               ("2026-12-01..2026-10-01", "ends (2026-10-01) before it starts")])
def test_bad_periods(definitions, tmp_path, period, words):
    problems = refused(definitions, csv_file(tmp_path, GOOD.replace(",2026-10,", f",{period},")))
    assert [(p.code, p.where()) for p in problems] == [("bad-period" if period else "missing-period", "row 2, column B (period)")]
    assert words in problems[0].message


def test_a_row_given_twice(definitions, tmp_path):
    problems = refused(definitions, csv_file(tmp_path, GOOD, GOOD.replace(",FY2024/25,", ",,").replace("2026-10", "2026-11"),
                                             GOOD.replace(",Mosaic", ",Mosaic again")))
    assert [(p.code, p.where()) for p in problems] == [("duplicate", "row 4, column B (period)")]
    assert "also given in row 2" in problems[0].message


def test_numerator_above_denominator(definitions, tmp_path):
    code, where = one(definitions, tmp_path, GOOD.replace(",65,76,85.5,", ",80,76,,"))
    assert (code, where) == ("numerator-above-denominator", "row 2, column E (numerator)")


@pytest.mark.parametrize(("row", "column"), [(GOOD.replace(",85.5,", ",101,"), "G (value)"), (GOOD.replace(",82.9,", ",120.5,"), "H (england)"),
                                             (GOOD.replace(",85.6,", ",100.1%,"), "I (statistical_neighbours)")])
def test_percentages_outside_0_to_100(definitions, tmp_path, row, column):
    assert one(definitions, tmp_path, row) == ("out-of-range", f"row 2, column {column}")


@pytest.mark.parametrize(("row", "code", "column"), [
    (GOOD.replace(",65,", ",sixty,"), "bad-number", "E (numerator)"),
    (GOOD.replace(",85.5,", ",-3,"), "negative", "G (value)"),
    (GOOD.replace(",85.5,", ",nan,"), "bad-number", "G (value)"),
    (GOOD.replace(",85.5,", ",x,"), "bad-number", "G (value)"),  # statistical shorthand is for benchmarks only
    (GOOD.replace(",65,76,85.5,", ",,,,"), "missing-value", "G (value)"),
    (GOOD.replace(",65,76,85.5,", ",65,,,"), "missing-denominator", "F (denominator)"),
    (GOOD.replace(",65,76,85.5,", ",,76,,"), "missing-numerator", "E (numerator)"),
    (GOOD.replace(",65,76,85.5,", ",3,0,,"), "zero-denominator", "F (denominator)"),
    (GOOD.replace(",85.5,", ",90.0,"), "value-disagrees", "G (value)"),
    (GOOD.replace(",service,", ",locality,"), "unknown-level", "C (level)"),
    (GOOD.replace(",assessment,", ",,"), "missing-level-id", "D (level_id)"),
    (GOOD.replace(",service,assessment,", ",department,assessment,"), "level-id-at-department", "D (level_id)"),
    (GOOD.replace(",FY2024/25,", ",last year,"), "bad-period", "K (benchmark_period)"),
    (GOOD.replace(",Mosaic", ",\"Mosaic\x07\""), "bad-text", "L (source)"),
])
def test_a_cell_that_cannot_be_stored(definitions, tmp_path, row, code, column):
    assert one(definitions, tmp_path, row) == (code, f"row 2, column {column}")


def test_a_value_rounded_as_the_extract_rounds_it_agrees(definitions, tmp_path):
    store = MemoryStore()
    rows = GOOD.replace(",85.5,", ",86,"), GOOD.replace("2026-10", "2026-11").replace(",85.5,", ",85.53,")
    import_kpi_file(store, definitions, csv_file(tmp_path, *rows), at=AT)
    assert [v.value for v in store.kpi_values()] == [86.0, 85.53]


def test_problems_with_the_columns(definitions, tmp_path):
    problems = refused(definitions, csv_file(tmp_path, GOOD + ",", header=HEADER.replace("england", "englnd").replace("kpi,period,", "kpi,kpi,") + ",kpi"))
    assert [(p.code, p.where()) for p in problems] == [
        ("duplicate-column", "row 1, column B (kpi)"), ("unknown-column", "row 1, column H (englnd)"),
        ("duplicate-column", "row 1, column M (kpi)"), ("missing-column", "row 1, column period")]
    assert "did you mean 'england'?" in problems[1].message
    assert one(definitions, tmp_path, GOOD + ",extra") == ("extra-cells", "row 2")


@pytest.mark.parametrize(("content", "code"), [(b"", "empty-file"), (b"\xff\xfe k", "not-utf8"), (b"[{\"kpi\": 1,}]", "bad-json"),
                                               (b"[1]", "not-an-object"), (b"{\"rows\": []}", "bad-json"), (b"[]", "no-values"),
                                               (b"\"a,b\nc", "bad-csv")])
def test_files_that_cannot_be_read(definitions, tmp_path, content, code):
    path = tmp_path / ("extract.json" if content[:1] in (b"[", b"{") else "extract.csv")
    path.write_bytes(content)
    assert [p.code for p in refused(definitions, path)] == [code]


def test_all_or_nothing_and_every_problem_in_row_order(definitions, tmp_path):
    rows = [GOOD, GOOD.replace("2026-10", "2026-11").replace(",85.5,", ",185.5,"), GOOD.replace("2026-10", "2026-12"),
            GOOD.replace("2026-10", "2027-01").replace(",service,", ",region,")]
    problems = refused(definitions, csv_file(tmp_path, *rows))
    assert [p.where() for p in problems] == ["row 3, column G (value)", "row 5, column C (level)"]


def test_the_error_lists_each_problem(definitions, tmp_path):
    path = csv_file(tmp_path, GOOD.replace(",85.5,", ",185.5,"))
    with pytest.raises(ImportRefused) as caught:
        import_kpi_file(MemoryStore(), definitions, path)
    assert caught.value.message.splitlines()[0] == f"{path}: refused, nothing was stored (1 problem(s)):"
    assert caught.value.message.splitlines()[1].startswith("  row 2, column G (value): value 185.5 is a percentage above 100")
    assert json.loads(json.dumps(caught.value.to_dict()))["problems"][0]["where"] == "row 2, column G (value)"
