"""The qaflow command line: thin click commands that parse, call the Python API and print.

Shared plumbing for every command lives here:

- ``Settings`` (``ctx.obj``): ``--config``, ``--format`` and ``--color``, given before the command
  (``qaflow --format json test``) or after it (``qaflow test --format json``), see ``common_options``;
- ``QaflowGroup.invoke`` turns errors into exit codes, so commands just raise: ``QaflowError`` ->
  its ``exit_code`` (``ConfigError`` printed as ``FILE:LINE:COL: error: message [code]``), click's
  usage errors -> 2, anything else -> a one-line message and 3. Never a traceback
  (set ``QAFLOW_DEBUG=1`` to see one on stderr);
- ``Settings.echo`` / ``Settings.style`` / ``Settings.emit_json`` / ``Settings.note`` for output:
  data on stdout, notes and errors on stderr, colour only when wanted.

Exit codes: 0 ok, 1 findings (invalid config, failed tests), 2 usage, 3 internal error.
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, QaflowError, UsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


# --------------------------------------------------------------------------- plumbing


@dataclass
class Settings:
    """Global options, shared by every command through ``ctx.obj``."""

    config: Path | None = None  # None: ./config if it exists, else the bundled configuration
    format: str = "text"
    color: str = "auto"

    # -- configuration

    @property
    def config_dir(self) -> Path:
        from ..config.loader import default_config_dir

        return self.config if self.config is not None else default_config_dir()

    def definitions(self) -> Any:
        """Load the configuration; a ConfigError (exit 1, every problem printed) if it has errors.

        Through the per-user cache (README, "The configuration cache"): a configuration checked clean
        before, byte for byte, is not checked again, and its workflows are compiled as they are needed.
        """
        from ..config.loader import check_config

        definitions, problems = check_config(self.config_dir, cache=True)
        if definitions is None:
            raise ConfigError(problems)
        self.warn(problems)
        return definitions

    # -- output

    @property
    def json(self) -> bool:
        return self.format == "json"

    def use_color(self) -> bool | None:
        """For ``click.echo(color=...)``: None lets click decide (only on a terminal)."""
        if self.color == "always":
            return True
        if self.color == "never" or os.environ.get("NO_COLOR"):
            return False
        return None

    def style(self, text: str, **styles: Any) -> str:
        """Styled text; ``echo`` strips the styling when colour is off."""
        return click.style(text, **styles)

    def echo(self, text: str = "", *, err: bool = False) -> None:
        click.echo(text, err=err, color=self.use_color())

    def note(self, text: str) -> None:
        """Progress and remarks: always on stderr, so stdout stays data."""
        self.echo(text, err=True)

    def write(self, path: Path, text: str) -> None:
        """Write an output file (making its folder), and say so; a place that cannot be written is a UsageError."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from None
        self.note(f"wrote {path}")

    def emit_json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))

    def warn(self, problems: list[Any]) -> None:
        """Print warnings (problems that do not stop anything) on stderr."""
        for problem in problems:
            if getattr(problem, "severity", "error") == "warning":
                self.note(self.style(str(problem), fg="yellow"))

    def report_error(self, exc: QaflowError) -> None:
        """How a QaflowError is shown: JSON on stdout, or plain lines on stderr."""
        if self.json:
            self.emit_json(exc.to_dict())
            return
        if isinstance(exc, ConfigError):
            for problem in exc.problems:
                colour = "red" if problem.severity == "error" else "yellow"
                self.note(self.style(str(problem), fg=colour))
            return
        self.note(self.style(f"error: {exc.message}", fg="red"))


# C0 and C1 control characters and the Unicode line separators, shown escaped in text output so that
# text from the data (a payload, an alert message, an old record's actor) cannot forge or hide lines
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {
    0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def printable(text: str) -> str:
    """``text`` for one line of terminal output: control characters and line breaks escaped."""
    return text.translate(_CONTROL)


def _settings(ctx: click.Context) -> Settings:
    return ctx.ensure_object(Settings)


def _store(name: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[click.Context, Any, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            setattr(_settings(ctx), name, convert(value))
        return value

    return callback


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--config``, ``--format``, ``--color`` on a command or group (None: keep the outer value)."""
    options = [
        _config_option(),
        click.option(
            "--format",
            type=click.Choice(["text", "json"]),
            default=None,
            expose_value=False,
            callback=_store("format"),
            help="Output format (default: text).",
        ),
        click.option(
            "--color",
            type=click.Choice(["auto", "always", "never"]),
            default=None,
            expose_value=False,
            callback=_store("color"),
            help="Colour output (default: auto; NO_COLOR turns auto off).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _config_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--config",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        callback=_store("config"),
        help="Configuration folder (default: ./config if it exists, else the bundled one).",
    )


def _config_only(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--config`` alone, for commands whose own ``--format`` is not text|json (diagram)."""
    return _config_option()(command)


class QaflowGroup(click.Group):
    """A click group whose commands only raise: errors become exit codes here, never tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # click prints usage errors itself and exits 2
        except BrokenPipeError:
            raise  # the reader went away (`qaflow show ... | head`): click's main exits quietly
        except QaflowError as exc:
            _settings(ctx).report_error(exc)
            ctx.exit(exc.exit_code)
        except Exception as exc:  # a bug: say so in one line, exit 3
            settings = _settings(ctx)
            if os.environ.get("QAFLOW_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            message = f"{type(exc).__name__}: {exc}"
            if settings.json:
                settings.emit_json({"error": "InternalError", "message": message})
            else:
                settings.note(settings.style(f"qaflow: internal error: {message}", fg="red"))
                settings.note("(set QAFLOW_DEBUG=1 to see where it happened)")
            ctx.exit(EXIT_INTERNAL)


def pass_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the ``Settings`` as its first argument."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(_settings(click.get_current_context()), *args, **kwargs)

    return wrapper


@dataclass
class _Collector:
    """How this process collects garbage (see ``_tune_gc_for_one_command`` and ``without_collection``)."""

    collect_at_exit: bool = True


_COLLECTOR = _Collector()


@functools.cache  # once per process
def _tune_gc_for_one_command() -> None:
    """Collect garbage as suits a process that builds one large graph of objects, uses it and exits.

    Loading a configuration makes many objects that live until the command ends; with the default
    thresholds the collector walked them again and again (about a tenth of ``qaflow validate``), and
    the interpreter's exit walked everything left several times more. A young generation of 50,000
    objects (not 700); at exit the young generations are collected (what the command left behind
    lately is finalized) and everything else is frozen, so that the exit's own collections, which
    took more than a tenth of validate, have nothing left to walk.
    """
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(50_000, older, oldest)

    def collect_young_then_freeze() -> None:
        if _COLLECTOR.collect_at_exit:
            gc.collect(1)
        gc.freeze()

    atexit.register(collect_young_then_freeze)


@contextmanager
def without_collection() -> Iterator[None]:
    """Run a check that keeps nearly all it makes until the command ends, and holds no file or
    connection open, with the collector off: collecting during it, or after it at exit, would only
    walk what it made (about a tenth of ``qaflow validate``). The collector is on again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        _COLLECTOR.collect_at_exit = False  # what it made is left to the exit, uncollected
        if was_enabled:
            gc.enable()


@click.group(cls=QaflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(package_name="qaflow", prog_name="qaflow")
@click.pass_context
def main(ctx: click.Context) -> None:
    """qaflow: a declarative engine for children's-services QA workflows.

    Exit codes: 0 ok, 1 findings (invalid config, failed tests), 2 usage, 3 internal error.
    """
    _tune_gc_for_one_command()
    _settings(ctx)
