"""Imported KPI values on every store: stored whole, replaced by key (and said so), filtered, migrated."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import replace

import pytest

from engine import StoreError
from engine.store.base import KpiValue
from engine.store.open import open_store
from engine.store.sqlite import MIGRATIONS, SQLiteStore

OCT = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
NOV = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
Q3 = (dt.date(2026, 10, 1), dt.date(2026, 12, 31))


def value(kpi="assessments_within_45_working_days", period="2026-10", days=OCT, level="service", level_id="assessment", **kw) -> KpiValue:
    fields = {"numerator": 41, "denominator": 45, "value": 91.1, "england": 82.5, "source": "Mosaic extract",
              "imported_at": "2026-11-03T09:00:00+00:00", "imported_from": "extract.csv", **kw}
    return KpiValue(kpi, period, days[0], days[1], level, level_id, **fields)


def test_put_and_read_back(backend):
    store = backend.open()
    values = [value(), value(period="2026-11", days=NOV, value=88.0, numerator=44, denominator=50),
              value(period="FY2026/27-Q3", days=Q3, value=None, numerator=None, denominator=None, note="quarter"),
              value(kpi="care_leavers_in_touch", level="department", level_id="", statistical_neighbours=90.5, region=91.25)]
    assert store.put_kpi_values(values) == []
    again = backend.open()  # another connection to the same data
    got = again.kpi_values()
    assert got == sorted(values, key=lambda v: v.key)
    assert [v.period for v in got] == ["2026-10", "FY2026/27-Q3", "2026-11", "2026-10"]  # by key: kpi, level, level id, days
    assert got[0].numerator == 41 and isinstance(got[0].numerator, int) and got[0].value == 91.1
    assert got[1].value is None and got[1].note == "quarter"
    assert got[3].region == 91.25 and got[3].level_id == ""


def test_same_key_replaces_and_says_what_it_replaced(backend):
    store = backend.open()
    first = value()
    store.put_kpi_values([first, value(period="2026-11", days=NOV)])
    newer = replace(first, value=90.0, numerator=45, denominator=50, imported_at="2026-12-01T09:00:00+00:00")
    replaced = backend.open().put_kpi_values([newer, value(kpi="care_leavers_in_touch")])
    assert replaced == [first]
    stored = store.kpi_values("assessments_within_45_working_days")
    assert [v.value for v in stored] == [90.0, 91.1] and len(store.kpi_values()) == 3
    # a different level or period is a different value
    store.put_kpi_values([replace(newer, level="team", level_id="assessment_1"), replace(newer, period="FY2026/27-Q3", period_from=Q3[0], period_to=Q3[1])])
    assert len(store.kpi_values("assessments_within_45_working_days")) == 4


def test_filters(backend):
    store = backend.open()
    store.put_kpi_values([value(), value(period="2026-11", days=NOV), value(level="team", level_id="assessment_1"),
                          value(period="FY2026/27-Q3", days=Q3), value(kpi="care_leavers_in_touch", level="department", level_id="")])
    assert len(store.kpi_values(level="service")) == 3
    assert [v.level_id for v in store.kpi_values(level="team", level_id="assessment_1")] == ["assessment_1"]
    # a period overlapping the days asked for
    assert [v.period for v in store.kpi_values("assessments_within_45_working_days", level="service", start=NOV[0], end=NOV[1])] \
        == ["FY2026/27-Q3", "2026-11"]
    assert store.kpi_values(start=dt.date(2027, 1, 1)) == []
    assert store.kpi_values("nope") == [] and store.kpi_values(level_id="a\x00b") == []


def test_a_failed_put_stores_nothing(durable):
    store = durable.open()
    store.put_kpi_values([value()])
    bad = [value(kpi="x", value=1.0), value(kpi="y", source=None)]  # a NOT NULL column left empty: the database refuses
    with pytest.raises(StoreError):
        store.put_kpi_values(bad)
    assert [v.kpi for v in durable.open().kpi_values()] == ["assessments_within_45_working_days"]


def test_readonly_store_refuses_to_store(durable):
    durable.open().put_kpi_values([value()])
    reader = open_store(durable.target, readonly=True)
    try:
        assert len(reader.kpi_values()) == 1
        with pytest.raises(StoreError, match="read-only"):
            reader.put_kpi_values([value(kpi="other")])
    finally:
        reader.close()


def test_an_older_sqlite_file_gains_the_table(tmp_path):
    path = tmp_path / "v4.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TABLE kpi_values")
        raw.execute("PRAGMA user_version = 4")
    reader = open_store(path, readonly=True)
    assert reader.schema_version == 4 and reader.kpi_values() == []
    reader.close()
    with SQLiteStore(path) as store:
        assert store.schema_version == len(MIGRATIONS) == 5
        store.put_kpi_values([value()])
        assert len(store.kpi_values()) == 1
