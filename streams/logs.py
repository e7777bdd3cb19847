"""How the worker logs: plain text (no terminal colours in files) or one JSON object a line
(`CONNECTOR_LOG_FORMAT=json`), for log shippers."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_config(level: int | str, fmt: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the worker (Faust applies it too)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"connector": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "connector",
                "stream": "ext://sys.stderr",
                "level": level,
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }
