"""The CLI's contract for scripts: JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from tests.conftest import FIXTURE_OUTLETS, ROOT, repo_topics


def _config(tmp_path: Path, **database: str) -> Path:
    data = {
        "database": database or {"url": f"sqlite:///{tmp_path / 'v.db'}"},
        "topics": repo_topics(),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)


def test_stories_json_on_an_empty_database_is_an_empty_array(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stories", "--json", "--config", str(_config(tmp_path))]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_extract_json_shows_why_a_page_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = FIXTURE_OUTLETS / "le360" / "articles" / "e1-hammouchi-distingue.html"
    code = main(["extract", str(page), "--url", "https://fr.le360.ma/x_ABC/", "--json",
                 "--config", str(_config(tmp_path))])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"url", "title", "text", "published", "author", "language", "topics"}
    assert out["url"] == "https://fr.le360.ma/x_ABC/"
    assert out["language"] == "fr" and "Hammouchi" in out["title"]
    (topic,) = out["topics"]
    assert topic["name"] == "maroc-france-securite"
    assert any(m["term"] == "hammouchi" and m["field"] == "title" for m in topic["matched"])


def test_extract_of_a_listing_says_not_an_article(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = FIXTURE_OUTLETS / "le360" / "politique.html"
    assert main(["extract", str(listing), "--json", "--config", str(_config(tmp_path))]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped"] and out["text"] is None and out["topics"] == []


def test_extract_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.html"
    assert main(["extract", str(missing), "--config", str(_config(tmp_path))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "cannot read file" in err[0]


def test_extract_dead_server_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/article.html"
    assert main(["extract", url, "--config", str(_config(tmp_path))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and url in err[0] and "cannot fetch" in err[0]


def test_unreachable_postgresql_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _config(tmp_path, url=f"postgresql://veille:secret@127.0.0.1:{port}/veille")
    assert main(["stories", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0]
    assert "secret" not in err[0]  # never print the password


def test_unknown_outlet_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crawl", "--outlet", "nosuch", "--config", str(ROOT / "config.yaml")]) == 2
    assert "no outlet named 'nosuch'" in capsys.readouterr().err
