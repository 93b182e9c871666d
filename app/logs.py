"""Logging set-up: readable on a terminal, one JSON object per line otherwise.

Machines (journald, log shippers) read the JSON form; people read the other. A log
file, when asked for, rotates so a daemon left for months does not fill the disk.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

LogFormat = Literal["auto", "text", "json"]

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            doc["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(doc, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at emit time, not at set-up time.

    A thread that logs after stderr was swapped (pytest's capture, a daemon's redirect)
    must not hit a closed stream.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(
    fmt: LogFormat = "auto",
    level: str = "INFO",
    log_file: str | Path | None = None,
    *,
    stream: object = None,
) -> None:
    """Configure the root logger once per process."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not getattr(out, "isatty", lambda: False)())
    formatter: logging.Formatter = (
        JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler = (
        _StderrHandler() if stream is None else logging.StreamHandler(out)  # type: ignore[arg-type]
    )
    handler.setFormatter(formatter)
    root.addHandler(handler)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=10_000_000, backupCount=5, encoding="utf-8"
        )
        fh.setFormatter(JsonFormatter() if fmt != "text" else formatter)
        root.addHandler(fh)
    root.setLevel(level.upper())
    for noisy in ("scrapy", "twisted", "trafilatura", "htmldate", "filelock", "charset_normalizer", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
