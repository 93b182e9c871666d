"""The CLI's contract for scripts: JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.conftest import FIXTURE_OUTLETS, ROOT, repo_topics, without_env_overrides
from veille.cli import main


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


def test_stories_lists_a_recent_window_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`veille stories` reads the last 7 days (newest first, at most --limit), never the
    whole archive; --days, --since and --limit reach further, and a cut list says so."""
    from datetime import UTC, datetime, timedelta

    from veille.storage.db import Database
    from veille.storage.models import Story

    cfg = _config(tmp_path)
    now = datetime.now(UTC)
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    with db.transaction() as s:
        for title, age in (("fresh", 1), ("older", 2), ("old", 10), ("ancient", 400)):
            s.add(Story(title=title, first_seen=now - timedelta(days=age), last_seen=now,
                        published=now - timedelta(days=age)))
    db.dispose()

    def titles(*extra: str) -> tuple[list[str], str]:
        assert main(["stories", "--all", "--json", "--config", str(cfg), *extra]) == 0
        out = capsys.readouterr()
        return [st["title"] for st in json.loads(out.out)], out.err

    assert titles() == (["fresh", "older"], "")
    assert titles("--days", "30")[0] == ["fresh", "older", "old"]
    assert titles("--since", (now - timedelta(days=500)).date().isoformat())[0] == ["fresh", "older", "old", "ancient"]
    shown, note = titles("--limit", "1")
    assert shown == ["fresh"] and "newest 1 stories" in note and "--limit" in note
    with pytest.raises(SystemExit):
        main(["stories", "--days", "0", "--config", str(cfg)])


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


# passwords in URLs never reach stdout or stderr (cron mail, journald) --------------------

SECRET = "S3cret/p@ss"  # a `/` and an `@`: what naive masking lets through


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _veille(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, in a child process, as cron would run it."""
    return subprocess.run([sys.executable, "-m", "veille.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**without_env_overrides(), **(env or {})},
                          timeout=300)


def _no_secret(proc: subprocess.CompletedProcess[str], *, code: int, shows: str) -> str:
    """The one error line, after checking the secret is nowhere and the masked URL is there."""
    out = proc.stdout + proc.stderr
    assert SECRET not in out and "S3cret" not in out, out[-2000:]
    assert "Traceback" not in out, out[-2000:]
    assert proc.returncode == code, out[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("veille: error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert shows in lines[0], lines[0]
    return lines[0]


def test_bad_database_url_in_the_file_is_masked(tmp_path: Path) -> None:
    cfg = _config(tmp_path, url=f"postgres://veille:{SECRET}@db/veille")
    _no_secret(_veille("status", "--config", str(cfg)), code=2, shows="postgres://veille:***@db/veille")


@pytest.mark.parametrize("url", [f"postgresql://veille:{SECRET}@db:port/veille",
                                 f"veille:{SECRET}@db/veille"])
def test_unparseable_database_url_is_masked(tmp_path: Path, url: str) -> None:
    _no_secret(_veille("crawl", "--config", str(_config(tmp_path, url=url))), code=2, shows="***@")


def test_bad_database_url_from_the_environment_is_masked(tmp_path: Path) -> None:
    proc = _veille("crawl", "--config", str(_config(tmp_path)),
                   env={"VEILLE_DATABASE_URL": f"mysql://veille:{SECRET}@db/veille"})
    line = _no_secret(proc, code=2, shows="mysql://veille:***@db/veille")
    assert line.startswith("veille: error: env VEILLE_DATABASE_URL (overrides database.url): ")


def test_unreachable_postgresql_from_the_environment_is_masked(tmp_path: Path) -> None:
    port = _closed_port()
    proc = _veille("crawl", "--config", str(_config(tmp_path)),
                   env={"VEILLE_DATABASE_URL": f"postgresql://veille:{SECRET}@127.0.0.1:{port}/veille"})
    _no_secret(proc, code=1, shows=f"postgresql://veille:***@127.0.0.1:{port}/veille")


def _queue_config(tmp_path: Path, queue: str) -> Path:
    path = _config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["crawl"] = {"queue": queue}
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_bad_queue_url_is_masked(tmp_path: Path) -> None:
    cfg = _queue_config(tmp_path, f"http://:{SECRET}@127.0.0.1:6379/0")
    _no_secret(_veille("crawl", "--config", str(cfg)), code=2, shows="'http://:***@127.0.0.1:6379/0'")


def test_queue_url_with_a_raw_slash_in_its_password_is_masked(tmp_path: Path) -> None:
    cfg = _queue_config(tmp_path, f"redis://:{SECRET}@127.0.0.1:6379/0")
    _no_secret(_veille("crawl", "--config", str(cfg)), code=2, shows="'redis://:***@127.0.0.1:6379/0'")


def test_unreachable_queue_is_masked(tmp_path: Path) -> None:
    port = _closed_port()
    # the `/` quoted as it must be, the `@` left raw: redis-py splits at the last `@`
    cfg = _queue_config(tmp_path, f"redis://:{quote(SECRET, safe='@')}@127.0.0.1:{port}/0")
    proc = _veille("crawl", "--config", str(cfg), "-v")  # debug logging shows no more
    out = proc.stdout + proc.stderr
    assert "S3cret" not in out and "p@ss" not in out, out[-2000:]
    assert proc.returncode == 1 and "Traceback" not in out
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0" in out


def test_json_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`veille stories --json | head -c 1`: the reader leaves early; no traceback."""
    from datetime import UTC, datetime

    from veille.storage.db import Database
    from veille.storage.models import Story

    cfg = _config(tmp_path)
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    with db.transaction() as s:
        s.add_all(Story(title=f"story {i} " + "x" * 200, first_seen=datetime.now(UTC)) for i in range(400))
    db.dispose()
    cmd = f"{sys.executable} -m veille.cli stories --all --json --config {cfg} | head -c 1"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                         cwd=ROOT, env=without_env_overrides(), timeout=120)
    assert out.stdout == "["
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
    assert out.returncode == 141
