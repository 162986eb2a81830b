"""Bring KPI figures in from outside: a CSV or JSON export (``qaflow kpi import``) or a host pushing them.

Every row is checked against the KPI it names (config/rules/kpis.yaml or a programme) before anything
is stored: a KPI that is not defined, or that qaflow computes from workflow history; a period that
cannot be read or does not say whose quarter it is; a level the reports do not know; a row given
twice; a numerator above its denominator; a percentage outside 0-100. A file with any problem is
refused whole, each problem named by row and column, and nothing is stored. A file without problems is
stored in one transaction; a figure for a KPI, level and period already stored replaces it, and the
result says which it replaced. docs/kpis.md describes the format.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from ..calendar import LONDON
from ..definitions import Definitions
from ..errors import ImportRefused, UsageError
from ..periods import parse_period
from ..store.base import KpiValue
from .catalogue import BENCHMARKS, KpiSpec, known_levels, kpi_catalogue, suggest

__all__ = ["COLUMNS", "ImportProblem", "ImportRefused", "ImportResult", "KpiValue", "check_kpi_rows", "import_kpi_file", "import_kpi_values",
           "read_kpi_file"]

#: The columns of an import file (docs/kpis.md); kpi and period are required, the rest optional.
COLUMNS = ("kpi", "period", "level", "level_id", "numerator", "denominator", "value", *BENCHMARKS, "benchmark_period",
           "source", "note", "title")
REQUIRED = ("kpi", "period")
NUMBERS = ("numerator", "denominator", "value", *BENCHMARKS)
TEXTS = ("source", "note", "benchmark_period", "level_id")
#: Shorthand UK official statistics use in a published table for a figure that is not given: c (confidential,
#: suppressed), x (not available), z (not applicable), low (rounds to zero), and ':' or '..'. Accepted in the
#: benchmark columns only, and read as "not known".
NOT_GIVEN = frozenset({"c", "x", "z", "low", "..", ":", "-", "n/a", "na"})
PERIOD_FORMS = "2026-10 (a month), FY2026/27-Q3 (a financial quarter), CY2026-Q3 (a calendar quarter), FY2026/27, CY2026 or 2026-10-01..2026-10-15"
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_TEXT = 500
MAX_PROBLEMS_SHOWN = 50
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class ImportProblem:
    """One reason a file (or a list of values) was refused: where, and what is wrong."""

    row: int | None  # the spreadsheet row (the header is row 1) or the item (from 1); None: the whole file
    column: str | None  # the column (CSV) or field (JSON) name
    code: str
    message: str
    letter: str = ""  # the spreadsheet column letter, for CSV
    items: bool = False  # rows are JSON items (or values pushed by a host), not spreadsheet rows

    def where(self) -> str:
        if self.row is None:
            return f"column {self.column}" if self.column else "the file"
        if self.items:
            return f"item {self.row}" + (f", field '{self.column}'" if self.column else "")
        if self.column:
            return f"row {self.row}, column {self.letter} ({self.column})" if self.letter else f"row {self.row}, column {self.column}"
        return f"row {self.row}"

    def __str__(self) -> str:
        return f"{self.where()}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message, "where": self.where()}


@dataclass(frozen=True)
class ImportResult:
    """What an import stored: each value, and those it replaced (the same KPI, level and period stored before)."""

    origin: str
    stored: tuple[KpiValue, ...]
    replaced: tuple[KpiValue, ...]
    dry_run: bool = False

    @property
    def added(self) -> int:
        return len(self.stored) - len(self.replaced)

    @property
    def unchanged(self) -> int:
        """How many of the values replaced had the same figures (a file imported again)."""
        now = {v.key: v for v in self.stored}
        return sum(1 for old in self.replaced if _figures(old) == _figures(now.get(old.key)))

    def summary(self) -> str:
        """One line: how many values were (or, in a dry run, would be) stored, new and replacing."""
        kpis = sorted({v.kpi for v in self.stored})
        verb = "would store" if self.dry_run else "stored"
        line = f"{self.origin}: {verb} {len(self.stored)} value(s) of {len(kpis)} KPI(s)"
        if self.stored:
            first = min(self.stored, key=lambda v: (v.period_from, v.period_to))
            last = max(self.stored, key=lambda v: (v.period_to, v.period_from))
            line += f", {first.period_from.isoformat()} to {last.period_to.isoformat()}"
        same = f" ({self.unchanged} with the same figures)" if self.unchanged else ""
        return line + f": {self.added} new, {len(self.replaced)} replacing what was stored{same}"

    def replacements(self) -> list[str]:
        """A line for each value replaced: which, and its figure before and now."""
        now = {v.key: v for v in self.stored}
        lines = []
        for old in self.replaced:
            new = now.get(old.key)
            where = old.level if old.level == "department" else f"{old.level} {old.level_id}"
            change = "the same figures" if _figures(old) == _figures(new) else f"was {_shown(old)}, now {_shown(new)}"
            lines.append(f"{old.kpi} {where} {old.period}: {change}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "dry_run": self.dry_run, "stored": [v.to_dict() for v in self.stored],
                "replaced": [v.to_dict() for v in self.replaced], "added": self.added, "unchanged": self.unchanged,
                "summary": self.summary()}


def _figures(v: KpiValue | None) -> tuple[Any, ...] | None:
    if v is None:
        return None
    return (v.value, v.numerator, v.denominator, v.england, v.statistical_neighbours, v.region, v.benchmark_period, v.note)


def _shown(v: KpiValue | None) -> str:
    if v is None:
        return "-"
    figure = "no value" if v.value is None else f"{v.value:g}"
    return figure + (f" ({v.numerator:g} of {v.denominator:g})" if v.numerator is not None and v.denominator is not None else "")


# --------------------------------------------------------------------------- reading files


@dataclass
class _Row:
    number: int  # spreadsheet row, or JSON item
    cells: dict[str, Any]
    letters: dict[str, str] = field(default_factory=dict)


def _letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the spreadsheet column."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _column_name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lstrip("\ufeff").strip().lower())


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(name, [ImportProblem(None, None, "not-utf8",
                                                 f"the file is not UTF-8 text (byte {exc.start + 1}): save it as CSV UTF-8 or JSON")]) from None


def read_kpi_file(path: str | Path) -> tuple[list[_Row], bool]:
    """The rows of a CSV or JSON file (by its suffix, else by its first character) and whether they are JSON items.

    Raises ImportRefused for a file that cannot be read as either, UsageError for one that is not there.
    """
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImportRefused(name, [ImportProblem(None, None, "too-large", f"the file has {size:,} bytes; split it (at most {MAX_BYTES:,})")])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no file '{path}'") from None
    except IsADirectoryError:
        raise UsageError(f"'{path}' is a folder, not a file") from None
    except OSError as exc:
        raise UsageError(f"cannot read '{path}': {exc.strerror or exc}") from None
    text = _decode(raw, name)
    as_json = path.suffix.lower() == ".json" or (path.suffix.lower() != ".csv" and text.lstrip()[:1] in ("[", "{"))
    return (_json_rows(text, name) if as_json else _csv_rows(text, name)), as_json


def _csv_rows(text: str, name: str) -> list[_Row]:
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise ImportRefused(name, [ImportProblem(None, None, "bad-csv", f"not readable as CSV: {exc}")]) from None
    if not records or not any(cell.strip() for cell in records[0]):
        raise ImportRefused(name, [ImportProblem(None, None, "empty-file", "the file is empty: its first row should name the columns "
                                                                        f"({', '.join(COLUMNS[:7])}, ...)")])
    header = [_column_name(h) for h in records[0]]
    problems = []
    for i, column in enumerate(header):
        if column not in COLUMNS:
            hint = suggest(column, COLUMNS)
            problems.append(ImportProblem(1, column or "(blank)", "unknown-column",
                                          f"'{records[0][i].strip()}' is not a column qaflow reads{hint} (columns: {', '.join(COLUMNS)})",
                                          letter=_letter(i)))
        elif column in header[:i]:
            problems.append(ImportProblem(1, column, "duplicate-column", f"column '{column}' appears twice", letter=_letter(i)))
    for column in REQUIRED:
        if column not in header:
            problems.append(ImportProblem(1, column, "missing-column", f"there is no '{column}' column (it is required)"))
    if problems:
        raise ImportRefused(name, problems)
    if len(records) - 1 > MAX_ROWS:
        raise ImportRefused(name, [ImportProblem(None, None, "too-many-rows", f"the file has {len(records) - 1:,} rows; split it (at most {MAX_ROWS:,})")])
    letters = {column: _letter(i) for i, column in enumerate(header)}
    rows = []
    for n, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue  # a blank line (spreadsheets often end with some)
        cells: dict[str, Any] = {header[i]: record[i] for i in range(min(len(header), len(record)))}
        if len(record) > len(header) and any(cell.strip() for cell in record[len(header):]):
            cells["\0extra"] = len(record)
        rows.append(_Row(n, cells, letters))
    return rows


def _json_rows(text: str, name: str) -> list[_Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ImportRefused(name, [ImportProblem(None, None, "bad-json", f"not readable as JSON: {exc.msg} at {where}")]) from None
    items, defaults = _items(data, name)
    return _item_rows(items, defaults, name)


def _items(data: Any, name: str) -> tuple[list[Any], dict[str, Any]]:
    if isinstance(data, list):
        return data, {}
    if isinstance(data, Mapping) and isinstance(data.get("values"), list):
        unknown = [k for k in data if k not in ("values", "source")]
        if unknown:
            raise ImportRefused(name, [ImportProblem(None, str(unknown[0]), "unknown-field", f"'{unknown[0]}' is not read here: the file "
                                                     "holds 'values' (a list) and may give a 'source' for all of them")])
        return data["values"], ({"source": data["source"]} if "source" in data else {})
    raise ImportRefused(name, [ImportProblem(None, None, "bad-json", "the JSON should be a list of values, or {\"values\": [...]}")])


def _item_rows(items: Sequence[Any], defaults: Mapping[str, Any], name: str) -> list[_Row]:
    if len(items) > MAX_ROWS:
        raise ImportRefused(name, [ImportProblem(None, None, "too-many-rows", f"there are {len(items):,} values; split them (at most {MAX_ROWS:,})")])
    rows, problems = [], []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            problems.append(ImportProblem(n, None, "not-an-object", "each value is an object such as {\"kpi\": ..., \"period\": ...}", items=True))
            continue
        for key in item:
            if key not in COLUMNS:
                problems.append(ImportProblem(n, str(key), "unknown-field", f"'{key}' is not a field qaflow reads{suggest(str(key), COLUMNS)}",
                                              items=True))
        rows.append(_Row(n, {**defaults, **{k: v for k, v in item.items() if k in COLUMNS}}))
    if problems:
        raise ImportRefused(name, problems)
    return rows


# --------------------------------------------------------------------------- checking rows


class _Bad(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _text(value: Any, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Bad("bad-text", f"{column} should be text")
    text = str(value).strip()
    if _CONTROL.search(text):
        raise _Bad("bad-text", f"{column} holds a control character or line break")
    if len(text) > MAX_TEXT:
        raise _Bad("bad-text", f"{column} is {len(text)} characters long (at most {MAX_TEXT})")
    return text


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def _number(value: Any, column: str, *, percent: bool) -> tuple[float | None, int]:
    """A figure as given: (number or None when empty or not given, its decimal places)."""
    if value is None:
        return None, 0
    if isinstance(value, bool):
        raise _Bad("bad-number", f"{column} should be a number, not {str(value).lower()}")
    if isinstance(value, (int, float)):
        number, decimals = float(value), (0 if isinstance(value, int) else _decimals(repr(value)))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None, 0
        if text.lower() in NOT_GIVEN:
            if column in BENCHMARKS:
                return None, 0
            raise _Bad("bad-number", f"{column} '{text}' is not a number (statistical shorthand such as c, x or z is "
                                     "accepted for benchmarks only; leave the cell empty if there is no figure)")
        if text.endswith("%") and percent and column not in ("numerator", "denominator"):
            text = text[:-1].strip()
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
        try:
            number = float(text)
        except ValueError:
            raise _Bad("bad-number", f"{column} '{value.strip()}' is not a number") from None
        decimals = _decimals(text)
    else:
        raise _Bad("bad-number", f"{column} should be a number")
    if not math.isfinite(number):
        raise _Bad("bad-number", f"{column} should be a finite number")
    if number < 0:
        raise _Bad("negative", f"{column} {number:g} is below 0")
    if percent and column not in ("numerator", "denominator") and number > 100:
        raise _Bad("out-of-range", f"{column} {number:g} is a percentage above 100 (percentages lie between 0 and 100)")
    return number, decimals


def _rounded(value: float, places: int) -> float:
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _derived(spec: KpiSpec, numerator: float, denominator: float) -> float | None:
    """The figure a numerator and denominator give in the KPI's unit (one decimal), or None for 0 of 0."""
    if not denominator:
        return None
    scale = 100 if spec.unit == "percent" else 10_000
    return _rounded(numerator * scale / denominator, 1)


@dataclass
class _Checker:
    catalogue: Mapping[str, KpiSpec]
    levels: Sequence[str]
    items: bool
    origin: str
    at: str
    problems: list[ImportProblem] = field(default_factory=list)
    seen: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def problem(self, row: _Row, column: str | None, code: str, message: str) -> None:
        self.problems.append(ImportProblem(row.number, column, code, message, row.letters.get(column or "", ""), self.items))

    def cell(self, row: _Row, column: str, read: Any) -> Any:
        try:
            return read(row.cells.get(column))
        except _Bad as bad:
            self.problem(row, column, bad.code, bad.message)
            return _FAILED

    def check(self, row: _Row) -> KpiValue | None:
        before = len(self.problems)
        extra = row.cells.pop("\0extra", None)
        if extra is not None:
            self.problem(row, None, "extra-cells", f"the row has {extra} cells but the header names {len(row.letters)} columns")
        kid = self.cell(row, "kpi", lambda v: _text(v, "kpi"))
        spec = None
        if kid is not _FAILED:
            if not kid:
                self.problem(row, "kpi", "missing-kpi", "no KPI named")
            elif kid not in self.catalogue:
                self.problem(row, "kpi", "unknown-kpi", f"no KPI '{kid}' is defined (config/rules/kpis.yaml or a programme){suggest(kid, self.catalogue)}")
            elif not self.catalogue[kid].imported:
                self.problem(row, "kpi", "computed-kpi", f"KPI '{kid}' is computed by qaflow from workflow history; its figures are not imported")
            else:
                spec = self.catalogue[kid]
        period = self.cell(row, "period", lambda v: _period(v, "period"))
        level = self.cell(row, "level", lambda v: _text(v, "level") or "department")
        level_id = self.cell(row, "level_id", lambda v: _text(v, "level_id"))
        if level is not _FAILED and level_id is not _FAILED:
            if level not in self.levels:
                self.problem(row, "level", "unknown-level", f"no level '{level}'{suggest(level, self.levels)} (levels: {', '.join(self.levels)})")
            elif level == "department" and level_id:
                self.problem(row, "level_id", "level-id-at-department", "leave level_id empty at department level (it is the whole service)")
            elif level != "department" and not level_id:
                self.problem(row, "level_id", "missing-level-id", f"which {level}? give its id in level_id")
        percent = spec is not None and spec.unit == "percent"
        figures = {c: self.cell(row, c, lambda v, c=c: _number(v, c, percent=percent)) for c in NUMBERS}
        texts = {c: self.cell(row, c, lambda v, c=c: _text(v, c)) for c in ("source", "note")}
        bperiod = self.cell(row, "benchmark_period", lambda v: _period(v, "benchmark_period", empty=True))
        value = self._value(row, spec, figures)
        if len(self.problems) > before or spec is None:
            return None
        assert isinstance(period, tuple) and isinstance(level, str) and isinstance(level_id, str)
        code, start, end = period
        key = (kid, level, level_id, start, end)
        if key in self.seen:
            where = "item" if self.items else "row"
            self.problem(row, "period", "duplicate", f"{kid} for {level} {level_id} {code} is also given in {where} {self.seen[key]}".replace("  ", " "))
            return None
        self.seen[key] = row.number
        num, den = figures["numerator"][0], figures["denominator"][0]
        return KpiValue(
            kpi=kid, period=code, period_from=start, period_to=end, level=level, level_id=level_id, value=value,
            numerator=int(num) if num is not None and num.is_integer() else num,
            denominator=int(den) if den is not None and den.is_integer() else den,
            england=figures["england"][0], statistical_neighbours=figures["statistical_neighbours"][0], region=figures["region"][0],
            benchmark_period=bperiod[0] if isinstance(bperiod, tuple) else "", source=texts["source"], note=texts["note"],
            imported_at=self.at, imported_from=self.origin,
        )

    def _value(self, row: _Row, spec: KpiSpec | None, figures: Mapping[str, Any]) -> float | None:
        if spec is None or any(f is _FAILED for f in figures.values()):
            return None
        (num, _), (den, _), (value, places) = figures["numerator"], figures["denominator"], figures["value"]
        if (num is None) != (den is None):
            given, missing = ("numerator", "denominator") if den is None else ("denominator", "numerator")
            self.problem(row, missing, f"missing-{missing}", f"a {given} is given without a {missing}: give both, or neither")
            return None
        ratio = spec.unit in ("percent", "rate_per_10000")
        if num is not None and den is not None:
            if not den and num:
                self.problem(row, "denominator", "zero-denominator", f"the denominator is 0 but the numerator is {num:g}")
                return None
            if spec.unit == "percent" and num > den:
                self.problem(row, "numerator", "numerator-above-denominator",
                             f"the numerator {num:g} is above the denominator {den:g}: a percentage counts part of a whole")
                return None
            if ratio:
                derived = _derived(spec, num, den)
                if value is None:
                    return derived
                if derived is not None and abs(_rounded(num * (100 if spec.unit == "percent" else 10_000) / den, places) - value) > 1e-9:
                    self.problem(row, "value", "value-disagrees",
                                 f"the value {value:g} is not {num:g} of {den:g} ({derived:g}{'%' if spec.unit == 'percent' else ' per 10,000'})")
                    return None
        if value is None:
            hint = " (or a numerator and denominator)" if ratio else ""
            self.problem(row, "value", "missing-value", f"no value{hint} for {spec.id}, measured in {spec.unit.replace('_', ' ')}")
        return value


_FAILED: Any = object()


def _period(value: Any, column: str, *, empty: bool = False) -> tuple[str, dt.date, dt.date] | None:
    text = _text(value, column)
    if not text:
        if empty:
            return None
        raise _Bad("missing-period", f"no {column.replace('_', ' ')} given")
    try:
        p = parse_period(text, bare_quarter=None)
    except UsageError as exc:
        reason = exc.message.split("; write ", 1)[0].removeprefix(f"bad period '{text}'").lstrip(": ")
        reason = "" if reason.startswith("write ") else reason  # only the forms accepted: they are said below
        forms = "" if "does not say whether" in reason else f"; write {PERIOD_FORMS}"
        raise _Bad("bad-period", f"{column.replace('_', ' ')} '{text}' cannot be read" + (f": {reason}" if reason else "") + forms) from None
    return p.code, p.start, p.end


def check_kpi_rows(definitions: Definitions, rows: Sequence[_Row], *, items: bool, origin: str, at: str) -> tuple[list[KpiValue], list[ImportProblem]]:
    """The values the rows give, and every problem found (checked against the configuration's KPIs and levels)."""
    checker = _Checker(kpi_catalogue(definitions), known_levels(definitions), items, origin, at)
    values = [v for row in rows if (v := checker.check(row)) is not None]
    if not rows:
        checker.problems.append(ImportProblem(None, None, "no-values", "there are no values in it", items=items))
    return values, checker.problems


# --------------------------------------------------------------------------- storing


def _kpi_store(store: Any) -> Any:
    if not (hasattr(store, "put_kpi_values") and hasattr(store, "kpi_values")):
        raise UsageError(f"{type(store).__name__} does not keep KPI values (the bundled memory, SQLite and PostgreSQL stores do)")
    return store


def _now(at: dt.datetime | str | None) -> str:
    if at is None:
        return dt.datetime.now(LONDON).isoformat(timespec="seconds")
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    return (at if at.tzinfo else at.replace(tzinfo=LONDON)).astimezone(LONDON).isoformat(timespec="seconds")


def _store(store: Any, values: list[KpiValue], origin: str, dry_run: bool) -> ImportResult:
    store = _kpi_store(store)
    if dry_run:
        replaced = [old for v in values for old in store.kpi_values(v.kpi, level=v.level, level_id=v.level_id, start=v.period_from, end=v.period_to)
                    if old.key == v.key]
        return ImportResult(origin, tuple(values), tuple(replaced), dry_run=True)
    replaced = store.put_kpi_values(values)
    return ImportResult(origin, tuple(values), tuple(replaced))


def import_kpi_file(store: Any, definitions: Definitions, path: str | Path, *, at: dt.datetime | str | None = None,
                    dry_run: bool = False) -> ImportResult:
    """Check a CSV or JSON file of KPI values and store them all, or refuse it whole (ImportRefused, nothing stored).

    ``at``: when the import happened (default: now, Europe/London). ``dry_run``: check, and say what would be
    stored and replaced, without storing anything.
    """
    rows, items = read_kpi_file(path)
    origin = Path(path).name
    values, problems = check_kpi_rows(definitions, rows, items=items, origin=origin, at=_now(at))
    if problems:
        raise ImportRefused(str(path), problems)
    return _store(store, values, origin, dry_run)


def import_kpi_values(store: Any, definitions: Definitions, values: Iterable[Mapping[str, Any]], *, origin: str = "api",
                      at: dt.datetime | str | None = None, dry_run: bool = False) -> ImportResult:
    """Check values a host pushes (mappings with the columns of an import file) and store them all, or refuse
    them all (ImportRefused naming each item, from 1, and field; nothing stored).

    ``origin`` says where they came from (kept with each value as ``imported_from``).
    """
    items = list(values)
    rows = _item_rows(items, {}, origin)
    checked, problems = check_kpi_rows(definitions, rows, items=True, origin=origin, at=_now(at))
    if problems:
        raise ImportRefused(origin, problems)
    return _store(store, checked, origin, dry_run)
