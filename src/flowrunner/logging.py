"""Logging for the whole service: structlog, JSON lines (or a readable console on a terminal).

Context travels in contextvars, so every line logged while handling a request carries its
``request_id`` (the correlation id), and every line of a run carries ``execution_id``,
``flow_id``, ``account_id`` and the ``node_id`` running. Standard-library loggers (uvicorn,
SQLAlchemy, our own ``logging.getLogger`` users) go through the same processors and format.
Secret values of the run being logged about are masked in every line.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from flowrunner import jsontext
from flowrunner.secrets.redaction import redact_credentials

Mask = Callable[[Any], Any]
"""A value → the same value with secrets hidden (a run's ``secrets.Masker.mask``)."""

_mask: contextvars.ContextVar[Mask | None] = contextvars.ContextVar(
    "flowrunner_log_mask", default=None
)


@contextmanager
def masking(mask: Mask) -> Iterator[None]:
    """Pass every field of every line logged inside this block (and its tasks) through
    ``mask``: the run's secret values never reach a log."""
    token = _mask.set(mask)
    try:
        yield
    finally:
        _mask.reset(token)


def mask_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide the current run's secret values in every field."""
    mask = _mask.get()
    if mask is None:
        return event_dict
    return {key: mask(value) for key, value in event_dict.items()}


def redact_urls(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no credential of a URL (``?token=``, ``user:password@``) in any
    field, whoever logged it (uvicorn's access log prints the WebSocket's ``?token=``)."""
    return {key: _redacted(value) for key, value in event_dict.items()}


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_credentials(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(
    level: str | int = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send every log line (structlog and standard library) to ``stream`` as JSON, or as
    coloured console text when ``json`` is False (default: JSON unless ``stream`` is a tty)."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    renderer: Any = (
        # orjson where it can (jsontext): a run writes two lines, its own and the access line.
        structlog.processors.JSONRenderer(serializer=jsontext.dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # After the traceback is text, so a secret or token quoted in it is hidden too.
            mask_secrets,
            redact_urls,
            renderer,
        ],
    )
    # Nothing renders where a line was logged from or its thread and process: the standard
    # library would look them up for every record (the caller by walking the stack).
    logging._srcfile = None  # the documented switch (logging HOWTO, "Optimization")
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # uvicorn installs its own handlers and levels; route its lines through ours instead,
    # at the level configured here.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
        named.setLevel(logging.NOTSET)
