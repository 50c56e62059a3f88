"""The control plane's log: one JSON object per line (structlog), with the ids of what it is about.

Every module logs through the standard library (``logging.getLogger("shipyard.…")``); the root handler
formats each record with structlog's ``ProcessorFormatter``: ``timestamp`` (UTC, ISO 8601), ``level``,
``logger``, ``event`` (the message), an ``exception`` when there is one, and whatever is bound in the
current context — a deployment binds ``deployment``, ``env``, ``release`` and ``trace_id``
(``bind_deployment``), so every line its steps log, in its task and the threads it starts, says which
deployment it belongs to. ``shipyard logs --control --trace ID`` finds them (control/logquery.py).

Lines go to stderr, which ``shipyard up --detach`` points at ``.shipyard/logs/control.log``.
"""

from __future__ import annotations

import logging
import secrets
import sys
from typing import IO

import structlog

_PRE_CHAIN: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_PRE_CHAIN,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(sort_keys=False)])


def configure(level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """JSON lines on ``stream`` (stderr) for every stdlib logger; structlog loggers render the same way."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[*_PRE_CHAIN[:1], structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def new_trace_id() -> str:
    """A W3C trace id (32 lowercase hex digits, not all zero)."""
    return secrets.token_hex(16)


def bind_deployment(deployment: int, env: str, release: str, trace_id: str) -> None:
    """Ids every log line of the current context (a deployment's task) carries from now on."""
    structlog.contextvars.bind_contextvars(deployment=deployment, env=env, release=release, trace_id=trace_id)
