"""`veille demo` end to end in real processes, then what a user sees with `veille stories`."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from tests.conftest import FIXTURE_OUTLETS, ROOT, without_env_overrides

TOPIC = "maroc-france-securite"


def veille(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veille.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=without_env_overrides())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("demo")
    proc = veille("demo", "--dir", str(out), "--config", str(ROOT / "config.yaml"), cwd=out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    yield out


def _expected() -> dict[str, list[dict[str, Any]]]:
    return {
        p.parent.name: (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("articles") or []
        for p in FIXTURE_OUTLETS.glob("*/expected.yaml")
    }


def _path(url: str) -> str:
    parts = urlsplit(url)
    path = unquote(parts.path).rstrip("/")
    return path + ("?" + parts.query if parts.query else "")


def test_help_lists_every_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "veille.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    for cmd in ("crawl", "run", "digest", "stories", "extract", "demo", "status"):
        assert f"    {cmd}" in proc.stdout


def test_stories_after_demo_are_the_on_topic_ones(demo: Path) -> None:
    proc = veille("stories", "--json", "--topic", TOPIC, "--config", str(demo / "config.yaml"), cwd=demo)
    assert proc.returncode == 0, proc.stderr
    stories = json.loads(proc.stdout)
    on_topic = {(o, _path(a["path"])) for o, arts in _expected().items() for a in arts if a["on_topic"]}
    off_topic = {(o, _path(a["path"])) for o, arts in _expected().items() for a in arts if not a["on_topic"]}
    seen = set()
    for st in stories:
        (topic,) = st["topics"]
        assert topic["name"] == TOPIC and topic["matched"] and topic["score"] > 0
        assert {m["field"] for m in topic["matched"]} <= {"title", "text"}
        for art in st["articles"]:
            seen.add((art["outlet"], _path(art["url"])))
            assert art["url"].startswith("http://127.0.0.1:")
    assert not seen & off_topic  # nothing else under the topic
    # every on-topic article is listed, except an outlet's own update folded into its original
    folded = {(o, _path(a["path"])) for o, arts in _expected().items() for a in arts
              if (a.get("duplicate_of") or "").startswith(o + ":")}
    assert on_topic - folded <= seen
    # one event per story (never an unrelated join); and at most one event split in two,
    # which arrival order can cause (see the note in tests/integration/test_distributed.py)
    event_of = {(o, _path(a["path"])): a.get("event") for o, arts in _expected().items() for a in arts}
    for st in stories:
        assert len({event_of[(a["outlet"], _path(a["url"]))] for a in st["articles"]}) == 1
    events = {a.get("event") for arts in _expected().values() for a in arts if a["on_topic"]}
    assert len(events) <= len(stories) <= len(events) + 1


def test_demo_writes_a_digest_with_every_story(demo: Path) -> None:
    msg = email.message_from_bytes((demo / "digest.eml").read_bytes(), policy=email.policy.default)
    assert msg.is_multipart()
    types = {p.get_content_type() for p in msg.walk()}
    assert {"text/plain", "text/html"} <= types
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()
    proc = veille("stories", "--json", "--config", str(demo / "config.yaml"), cwd=demo)
    stories = json.loads(proc.stdout)
    assert stories and all(st["articles"] for st in stories)  # a loop over nothing proves nothing
    for st in stories:
        for art in st["articles"]:
            assert art["url"] in text


def test_status_after_demo_names_the_faulty_outlets(demo: Path) -> None:
    proc = veille("status", "--json", "--config", str(demo / "config.yaml"), cwd=demo)
    assert proc.returncode == 0, proc.stderr
    states = {o["name"]: o["state"] for o in json.loads(proc.stdout)["outlets"]}
    assert states["blockedoutlet"] == "blocked"
    assert states["deadoutlet"] == "failing"
    assert states["bladi"] == "ok"
