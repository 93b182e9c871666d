"""The config contract: every broken config is one line naming the file and the field, exit 2."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from veille.cli import main
from veille.pipeline.config import (
    ENV_OVERRIDES,
    ConfigError,
    config_from_dict,
    load_config,
    parse_schedule,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell must not decide these tests: each sets what it needs."""
    for var in ["VEILLE_CONFIG", *ENV_OVERRIDES]:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def base() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: Any) -> Path:
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str) else data)
    return p


def test_default_config_is_valid() -> None:
    cfg = load_config(ROOT / "config.yaml")
    assert len(cfg.outlets) >= 12
    assert {o.language for o in cfg.outlets} == {"fr", "ar", "en"}
    assert "maroc-france-securite" in {t.name for t in cfg.topics}
    assert cfg.digest.from_ == "veille@example.org"


def _mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    node: Any = data
    keys = [int(k) if k.isdigit() else k for k in path.split("/")]
    for k in keys[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


_DELETE = object()

CASES = [
    ("outlets/2/feeds", ["htp:/x"], "outlets[2].feeds[0]: 'htp:/x' is not an http(s) URL"),
    ("crawl/concurency", 3, "crawl.concurency: unknown key"),
    ("crawl/download_delay", "fast", "crawl.download_delay: 'fast'"),
    ("schedule/crawl", "61 * * * *", "schedule.crawl: '61 * * * *' is not a valid cron expression"),
    ("schedule/crawl", "every day", "schedule.crawl: 'every day' is neither a 5-field cron"),
    ("schedule/timezone", "Mars/Olympus", "schedule.timezone: 'Mars/Olympus' is not a known time zone"),
    ("outlets/3/name", "bladi", "outlets[3]: duplicate outlet name 'bladi'"),
    ("outlets/0/url", _DELETE, "outlets[0].url: required key is missing"),
    ("outlets/0/language", "es", "outlets[0].language: 'es'"),
    ("outlets/0/article_pattern", "((", "outlets[0].article_pattern: '((' is not a valid regular expression"),
    ("digest/topics", ["nope"], "digest.topics[0]: 'nope' is not a configured topic"),
    ("digest/smtp/port", "x", "digest.smtp.port: 'x'"),
    ("database/url", "mysql://x", "database.url: 'mysql://x' is not a sqlite:// or postgresql:// URL"),
    ("crawl/queue_idle", 0, "crawl.queue_idle: 0: input should be greater than 0"),
    ("crawl/queue_idle", -5, "crawl.queue_idle: -5: input should be greater than 0"),
    ("crawl/queue_idle", "soon", "crawl.queue_idle: 'soon': input should be a valid number"),
    ("crawl/queue_idle", float("inf"), "crawl.queue_idle: inf: input should be a finite number"),
]


@pytest.mark.parametrize(("path", "value", "expected"), CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
def test_broken_config_one_line_exit_2(
    tmp_path: Path, base: dict[str, Any], capsys: pytest.CaptureFixture[str], path: str, value: Any, expected: str
) -> None:
    cfg_file = _write(tmp_path, _mutate(base, path, value))
    code = main(["stories", "--config", str(cfg_file)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{cfg_file}: {expected}" in lines[0]


def test_yaml_syntax_error_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_file = _write(tmp_path, "crawl:\n  user_agent: [unclosed\n  obey_robots: true\n")
    assert main(["crawl", "--config", str(cfg_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"veille: error: {cfg_file}: line ") and "YAML syntax error" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["status", "--config", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"veille: error: {missing}: config file not found (use --config or VEILLE_CONFIG)"


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_env_overrides(tmp_path: Path, base: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = _write(tmp_path, base)
    monkeypatch.setenv("VEILLE_CONFIG", str(cfg_file))
    monkeypatch.setenv("VEILLE_DATABASE_URL", "sqlite:///elsewhere.db")
    cfg = load_config(None)
    assert cfg.source == str(cfg_file)
    assert cfg.database.url == "sqlite:///elsewhere.db"



def test_overrides_come_from_the_environ_given(base: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that must not follow the shell (the demo) hands its own environ; the
    process environment is neither read nor changed."""
    monkeypatch.setenv("VEILLE_DATABASE_URL", "sqlite:///shell.db")
    data = {**base, "database": {"url": "sqlite:///own.db"}}
    assert config_from_dict(data, environ={}).database.url == "sqlite:///own.db"
    given = {"VEILLE_DATABASE_URL": "sqlite:///given.db"}
    assert config_from_dict(data, environ=given).database.url == "sqlite:///given.db"
    assert config_from_dict(data).database.url == "sqlite:///shell.db"
    assert os.environ["VEILLE_DATABASE_URL"] == "sqlite:///shell.db"

def test_parse_schedule() -> None:
    assert parse_schedule("30s").total_seconds() == 30  # type: ignore[union-attr]
    assert parse_schedule("15m").total_seconds() == 900  # type: ignore[union-attr]
    assert parse_schedule("*/30 * * * *") == "*/30 * * * *"
    with pytest.raises(ValueError):
        parse_schedule("0s")


def test_minimal_config_has_defaults() -> None:
    cfg = config_from_dict({})
    assert cfg.database.url == "sqlite:///veille.db"
    assert cfg.crawl.obey_robots is True


def test_no_traceback_in_a_real_process(tmp_path: Path, base: dict[str, Any]) -> None:
    cfg_file = _write(tmp_path, _mutate(base, "crawl/obey_robots", "perhaps"))
    proc = subprocess.run(
        [sys.executable, "-m", "veille.cli", "crawl", "--config", str(cfg_file)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"veille: error: {cfg_file}: crawl.obey_robots: 'perhaps': input should be a valid boolean, unable to interpret input"
    ]


# crawl.queue_idle and its env override VEILLE_QUEUE_IDLE ---------------------------------

def test_queue_idle_defaults_to_30_seconds() -> None:
    assert config_from_dict({}).crawl.queue_idle == 30.0
    assert load_config(ROOT / "config.yaml").crawl.queue_idle == 30.0  # documented, commented out


def test_queue_idle_from_the_file(tmp_path: Path, base: dict[str, Any]) -> None:
    assert load_config(_write(tmp_path, _mutate(base, "crawl/queue_idle", 2.5))).crawl.queue_idle == 2.5
    assert config_from_dict({"crawl": {"queue_idle": 1}}).crawl.queue_idle == 1.0


def test_queue_idle_env_wins_over_the_file(tmp_path: Path, base: dict[str, Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_QUEUE_IDLE", " 0.5 ")
    cfg = load_config(_write(tmp_path, _mutate(base, "crawl/queue_idle", 45)))
    assert cfg.crawl.queue_idle == 0.5
    assert cfg.crawl.timeout == base["crawl"]["timeout"]  # the rest of the section is kept
    assert config_from_dict({}).crawl.queue_idle == 0.5  # no crawl section in the file


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_queue_idle_env_is_unset(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VEILLE_QUEUE_IDLE", value)
    assert config_from_dict({"crawl": {"queue_idle": 7}}).crawl.queue_idle == 7.0


ENV_CASES = [
    ("VEILLE_QUEUE_IDLE", "soon", "crawl.queue_idle",
     "'soon': input should be a valid number, unable to parse string as a number"),
    ("VEILLE_QUEUE_IDLE", "0", "crawl.queue_idle", "'0': input should be greater than 0"),
    ("VEILLE_QUEUE_IDLE", "-1", "crawl.queue_idle", "'-1': input should be greater than 0"),
    ("VEILLE_QUEUE_IDLE", "nan", "crawl.queue_idle", "'nan': input should be a finite number"),
    ("VEILLE_QUEUE_IDLE", "inf", "crawl.queue_idle", "'inf': input should be a finite number"),
    ("VEILLE_DATABASE_URL", "mysql://x", "database.url",
     "'mysql://x' is not a sqlite:// or postgresql:// URL"),
]


@pytest.mark.parametrize(("var", "value", "field", "expected"), ENV_CASES,
                         ids=[f"{c[0]}={c[1]}" for c in ENV_CASES])
def test_bad_env_override_one_line_naming_the_variable(
    tmp_path: Path, base: dict[str, Any], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str, expected: str,
) -> None:
    monkeypatch.setenv(var, value)
    assert main(["stories", "--config", str(_write(tmp_path, base))]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"veille: error: env {var} (overrides {field}): {expected}"
    ]


def test_env_override_leaves_a_broken_section_to_the_file(
    tmp_path: Path, base: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_QUEUE_IDLE", "1")
    cfg_file = _write(tmp_path, _mutate(base, "crawl", ["not", "a", "mapping"]))
    with pytest.raises(ConfigError, match=r"^\S+broken\.yaml: crawl: .*valid dictionary"):
        load_config(cfg_file)


def test_bad_env_override_no_traceback_in_a_real_process(tmp_path: Path, base: dict[str, Any]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "veille.cli", "crawl", "--worker", "--config", str(_write(tmp_path, base))],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "VEILLE_QUEUE_IDLE": "30s"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "veille: error: env VEILLE_QUEUE_IDLE (overrides crawl.queue_idle): "
        "'30s': input should be a valid number, unable to parse string as a number"
    ]


# config bombs and huge values: refused or cut, in one short line -------------------------

def _alias_bomb(levels: int, width: int, where: str = "outlets") -> str:
    """Billion laughs in YAML: `levels` anchors, each a list of `width` aliases of the last."""
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\n{where}: *l{levels - 1}\n"


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `veille` in a child whose address space is capped at 2 GB: a bomb that got
    through would die of MemoryError (a traceback) instead of taking the machine."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([sys.executable, "-m", "veille.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, preexec_fn=cap, timeout=600)


def test_billion_laughs_is_refused_in_one_line(tmp_path: Path) -> None:
    cfg_file = _write(tmp_path, _alias_bomb(levels=10, width=10))  # 10^10 "lol" once expanded
    proc = _run_cli("status", "--config", str(cfg_file))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"veille: error: {cfg_file}: refused: over 500,000 values once its aliases (*name) "
        "are expanded: an alias bomb, or not a config"
    ]


def test_alias_bomb_just_over_the_cap_is_refused(tmp_path: Path) -> None:
    # 10^6 values: big enough to pass the cap, small enough to load without it
    with pytest.raises(ConfigError, match="an alias bomb"):
        load_config(_write(tmp_path, _alias_bomb(levels=6, width=10, where="topics")))


def test_aliases_a_config_uses_still_load(tmp_path: Path) -> None:
    text = "topics:\n- {name: a, require: [&t [dgsn, dgst]]}\n- {name: b, require: [*t, *t]}\n"
    cfg = load_config(_write(tmp_path, text))
    assert [t.require for t in cfg.topics] == [[["dgsn", "dgst"]], [["dgsn", "dgst"]] * 2]


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recursive structure"):
        load_config(_write(tmp_path, "topics: &t [*t]\n"))


def test_deep_nesting_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(_write(tmp_path, "topics: " + "[" * 20_000 + "]" * 20_000 + "\n"))


def test_config_file_over_1_mb_is_refused_unread(tmp_path: Path) -> None:
    cfg_file = _write(tmp_path, "# padding\n" * 150_000)  # 1.5 MB of comments: valid YAML
    with pytest.raises(ConfigError, match=r"config file is over 1,000,000 bytes"):
        load_config(cfg_file)


@pytest.mark.parametrize(("path", "value"), [
    ("outlets/0/url", "http:/" + "h" * 5_000_000),
    ("outlets/0/name", "X" * 5_000_000),
    ("crawl/download_delay", "9" * 5_000_000 + "s"),
    ("schedule/crawl", "* " * 2_500_000),
    ("crawl/" + "k" * 5_000_000, 1),
    ("outlets/0/feeds", [["x" * 1_000_000] * 5]),
])
def test_a_5_mb_value_gives_a_short_line(base: dict[str, Any], path: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(_mutate(base, path, value), source="config.yaml")
    message = str(info.value)
    assert len(message) < 300 and "\n" not in message, message[:500]
    assert "…" in message  # the value was cut, and says so


def test_a_big_value_in_a_file_gives_a_short_line_from_the_cli(tmp_path: Path, base: dict[str, Any]) -> None:
    cfg_file = _write(tmp_path, _mutate(base, "outlets/0/url", "ftp://" + "h" * 900_000))
    proc = _run_cli("status", "--config", str(cfg_file))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert len(line) < 300 + len(str(cfg_file))
    assert line.startswith(f"veille: error: {cfg_file}: outlets[0].url: 'ftp://hhh") and "…" in line
