"""Routes for operations on the whole store: advance the clock, compute a report, check a configuration change."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..clock import as_time
from ..config.loader import bundled_config_dir
from ..errors import UsageError
from ..problems import Location, Problem
from .auth import Identity
from .context import JSON, ServerContext, context
from .deps import require
from .schemas import AdvanceOut, ValidateBody, ValidateOut, error_responses

router = APIRouter(tags=["operations"])

MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "markdown": "text/markdown; charset=utf-8",
         "html": "text/html; charset=utf-8", "text": "text/plain; charset=utf-8"}
REPORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
#: Folders a proposed file may be in, and the name it may have.
CONFIG_FOLDERS = ("workflows", "rules", "programmes", "scenarios", "reports", "simulation")
CONFIG_FILE = re.compile(r"(?:%s)/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.ya?ml" % "|".join(CONFIG_FOLDERS))  # noqa: UP031


def server_now(engine: Any) -> Any:
    """The server's time: the engine's clock (create_app makes sure it has one), never a time from a request."""
    return as_time(engine.clock.now())


@router.post("/advance", response_model=None,
             responses={200: {"model": AdvanceOut, "description": "What fired: breaches and scheduled starts, in time order"},
                        **error_responses()})
def advance(request: Request, who: Annotated[Identity, Depends(require("advance"))]) -> JSON:
    """Fire every deadline breach and scheduled start due by the server's time, in time order, each once
    (also across several servers on one PostgreSQL database)."""
    engine = context(request).engine
    now = server_now(engine)
    fired = engine.advance(now)
    return JSON({"to": now.isoformat(), "fired": [o.to_dict() for o in fired]})


@router.post("/programme/start", response_model=None,
             responses={200: {"description": "What the month started, joined or found started before: {month, programmes, items}"},
                        **error_responses(400)})
def programme_start(
    request: Request,
    who: Annotated[Identity, Depends(require("programme"))],
    month: Annotated[str, Query(description="The programme month, YYYY-MM")],
) -> JSON:
    """Start the month's planned work of every programme whose quarter holds it, at the server's time, each item once:
    its targeted audits, the quarterly QA report in a programme's first month, the managers' briefing, and the
    proposed audits accepted before the month (as `qaflow programme start --month`)."""
    from ..programmes import start_programme_month

    engine = context(request).engine
    return JSON(start_programme_month(engine, month, at=server_now(engine)).to_dict())


@router.get("/reports/{period}", response_model=None,
            responses={200: {"description": "The report in the format asked for",
                             "content": {m.split(";")[0]: {} for m in MEDIA.values()}},
                       **error_responses(400)})
def report(
    request: Request,
    period: str,
    who: Annotated[Identity, Depends(require("report"))],
    level: Annotated[str, Query(description="department, or a level of the report definition (service, team, practitioner)")] = "department",
    report: Annotated[str | None, Query(description="A report id in the configuration's reports/ (default qa_report)")] = None,
    format: Annotated[str, Query(description="json, csv, markdown, html or text")] = "json",
    trend: Annotated[bool, Query(description="Include the month-by-month trajectory")] = True,
) -> Response:
    """The QA report for PERIOD (2026-10, 2026Q4, 2026/27Q3, 2026-10-01..2026-12-31) from the store's history."""
    from ..reports.metrics import compute_report
    from ..reports.period import parse_period
    from ..reports.render import render

    if format not in MEDIA:
        raise UsageError(f"unknown format '{format}' (known: {', '.join(MEDIA)})")
    ctx = context(request)
    chosen = parse_period(period)
    report_def = _report_definition(ctx, report)
    if level != "department" and level not in report_def.levels:
        raise UsageError(f"unknown level '{level}' (known: {', '.join(['department', *sorted(report_def.levels)])})")
    result = compute_report(ctx.engine.store, ctx.engine.definitions, start=chosen.start, end=chosen.end, level=level,
                            report=report_def, trend=trend)
    result = {**result, "period": {**result["period"], "kind": chosen.kind, "label": chosen.label or result["period"]["label"]}}
    return Response(render(result, format), media_type=MEDIA[format])


def _report_definition(ctx: ServerContext, name: str | None) -> Any:
    """A report definition by id only (never a path a caller names), compiled once."""
    from ..reports.definition import load_report

    if name is not None and not REPORT_ID.fullmatch(name):
        raise UsageError(f"a report is named by its id (letters, digits, _ and -), not {name!r}")
    found: dict[str, Path] = {}
    for root in (bundled_config_dir(), ctx.config_dir):  # the configuration's own win
        folder = root / "reports"
        if folder.is_dir():
            found.update({p.stem: p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()})
    key = name or "qa_report"
    if key not in found:
        raise UsageError(f"no report '{key}' (known: {', '.join(sorted(found)) or 'none'})")
    with ctx.reports_lock:
        if key not in ctx.reports:
            ctx.reports[key] = load_report(ctx.engine.definitions, found[key])
        return ctx.reports[key]


@router.post("/validate", response_model=None,
             responses={200: {"model": ValidateOut, "description": "Every problem found; ok is false if any is an error"},
                        **error_responses(400, 413, 422)})
def validate(request: Request, who: Annotated[Identity, Depends(require("validate"))], body: ValidateBody | None = None) -> JSON:
    """Check the server's configuration with proposed files laid over it (as `qaflow validate --db` would),
    against what the store runs. Nothing is changed: deploy the files and restart to apply them."""
    from ..config.loader import check_config
    from ..config.validate import validate_paths
    from ..runtime.preflight import check_against_store

    ctx = context(request)
    body = body or ValidateBody()
    for path in body.files:
        if not CONFIG_FILE.fullmatch(path) or ".." in path:
            raise UsageError(f"'{path}' is not a configuration file path: write FOLDER/NAME.yaml with FOLDER one of "
                             f"{', '.join(CONFIG_FOLDERS)}")
    with tempfile.TemporaryDirectory(prefix="qaflow-validate-") as tmp:
        root = Path(tmp) / "config"
        shutil.copytree(ctx.config_dir, root, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        for path, text in body.files.items():
            target = root / path
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        problems = validate_paths([root], root)
        if body.against_store and not any(p.severity == "error" for p in problems):
            definitions, _ = check_config(root)
            if definitions is not None:
                problems = sorted(problems + check_against_store(definitions, ctx.engine.store, label=ctx.store_label),
                                  key=lambda p: p.sort_key())
        shown = [_relative(p, root) for p in problems]
    errors = any(p.severity == "error" for p in shown)
    return JSON({"ok": not errors, "problems": [p.to_dict() for p in shown]})


def _relative(problem: Problem, root: Path) -> Problem:
    """A problem located in the temporary copy, located as the configuration's own path instead."""
    real = os.path.realpath(root)
    file, message = problem.location.file, problem.message
    full = os.path.realpath(file)  # a relative path is relative to the working directory
    if full == real or full.startswith(real + os.sep):
        file = os.path.relpath(full, real)
    for prefix in sorted({str(root), real}, key=len, reverse=True):
        message = message.replace(prefix + os.sep, "").replace(prefix, ".")
    return replace(problem, location=Location(file, problem.location.line, problem.location.column), message=message)
