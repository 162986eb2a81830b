"""Optional OpenTelemetry spans around start, fire and advance, when the host has OpenTelemetry installed.

Without the ``opentelemetry`` package (``pip install 'qaflow[otel]'``) nothing here runs and nothing
costs. With it, each call is one span named ``qaflow.start``, ``qaflow.fire`` or ``qaflow.advance``,
carrying the workflow, instance, trigger and outcome, but never the actor, data or payload: traces
often leave the council's systems, and those can identify a child or a family.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..errors import QaflowError


def tracer() -> Any:
    """The ``qaflow`` tracer, or None when OpenTelemetry is not installed or no tracer provider is set.

    The API alone (often installed by another package) only hands out spans that record nothing,
    and those would still cost every call: the host sets its provider before it makes its Engines.
    """
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer("qaflow")


def traced(name: str, call: Callable[..., Any], tracer: Any) -> Callable[..., Any]:
    """``call`` inside a span ``name``; its attributes say what was asked and how it ended."""

    @functools.wraps(call)
    def run(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(name) as span:
            for key, value in _attributes(name, args, kwargs).items():
                span.set_attribute(key, value)
            try:
                result = call(*args, **kwargs)
            except QaflowError as exc:
                span.set_attribute("qaflow.outcome", type(exc).__name__)
                raise
            span.set_attribute("qaflow.outcome", "ok")
            if name == "qaflow.advance":
                span.set_attribute("qaflow.fired", len(result))
            else:
                span.set_attribute("qaflow.instance", result.id)
                span.set_attribute("qaflow.state", result.state)
            return result

    return run


def _attributes(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, str]:
    if name == "qaflow.start" and args:
        return {"qaflow.workflow": str(args[0])}
    if name == "qaflow.fire" and len(args) >= 2:
        return {"qaflow.instance": str(args[0]), "qaflow.trigger": str(args[1])}
    return {}
