"""veille.logs: one JSON object per line for machines, an error without its traceback."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from veille.logs import JsonFormatter, setup_logging


@pytest.fixture()
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_json_lines_carry_extra_fields_and_the_error_without_traceback() -> None:
    try:
        raise ValueError("bad page")
    except ValueError:
        record = logging.getLogger("crawler").makeRecord(
            "crawler", logging.WARNING, __file__, 1, "%s: %s", ("le360", "http://x/a"),
            exc_info=sys.exc_info(), extra={"outlet": "le360", "url": "http://x/a", "obj": object()})
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["logger"] == "crawler"
    assert doc["message"] == "le360: http://x/a" and doc["outlet"] == "le360"
    assert doc["error"] == "ValueError: bad page" and "Traceback" not in line
    assert isinstance(doc["obj"], str)  # anything else is written as its str


def test_setup_logging_json_to_a_stream_and_a_rotating_file(tmp_path: Path, restore_root: None) -> None:
    out = io.StringIO()  # not a terminal: auto means JSON
    log_file = tmp_path / "logs" / "veille.log"
    setup_logging("auto", "info", log_file, stream=out)
    logging.getLogger("veille.test").info("crawl %s ended", 7, extra={"run_id": 7})
    logging.getLogger("scrapy.core").info("banner nobody needs")
    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["run_id"] == 7
    assert json.loads(log_file.read_text(encoding="utf-8").splitlines()[0])["message"] == "crawl 7 ended"


def test_text_format_is_for_people(restore_root: None) -> None:
    out = io.StringIO()
    setup_logging("text", "info", stream=out)
    logging.getLogger("veille.test").warning("outlet %s is blocked", "hespress")
    assert out.getvalue().rstrip().endswith("WARNING veille.test: outlet hespress is blocked")
