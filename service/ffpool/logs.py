"""Structured key=value logs (`timestamp='...' message='...'`) with secrets masked."""

from __future__ import annotations

import enum
import logging
import sys
from urllib.parse import urlsplit, urlunsplit

import structlog


def mask_url(url: str) -> str:
    """`amqp://guest:guest@host/` → `amqp://guest:***@host/`: never log a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def enum_values(
    _logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Render enums by value (`code='timeout'`), not by repr (`<FailureCode.TIMEOUT: ...>`):
    a safety net behind call sites that pass `.value` themselves."""
    for key, value in event_dict.items():
        if isinstance(value, enum.Enum):
            event_dict[key] = value.value
    return event_dict


def configure(level: str = "INFO") -> None:
    """Render every log line as key=value pairs, timestamp and message first."""
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s", force=True)
    # Library chatter ("connection open", per-request lines) is not the service's story.
    for noisy in ("websockets", "aiohttp.access", "aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.EventRenamer("message"),
            enum_values,
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "message"], drop_missing=True
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
