"""The config.yaml contract, validated at load time.

Every error names the file and the field path and says what was expected, on one line,
so a user can fix a typo without reading a traceback. Unknown keys are errors: a
misspelt option must not silently do nothing.
"""

from __future__ import annotations

import os
import re
import reprlib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG = "config.yaml"
DEFAULT_DATABASE_URL = "sqlite:///veille.db"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_INTERVAL = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_INTERVAL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

# env variable -> the config key it overrides; a value set in the environment wins
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "VEILLE_DATABASE_URL": ("database", "url"),
    "VEILLE_QUEUE_IDLE": ("crawl", "queue_idle"),
}


# A config file is a few KB: anything past this is a mistake or an attack, refused unread.
MAX_CONFIG_BYTES = 1_000_000
# YAML nodes once every alias is expanded: a config has a few thousand; an alias bomb
# ("billion laughs") has 10^9 and would take minutes and gigabytes to build and validate.
MAX_EXPANDED_NODES = 500_000
# fields whose value may carry a password: messages show them masked, never as typed
SECRET_FIELDS = frozenset({"database.url", "crawl.queue"})
SHOWN_CHARS = 80  # a value quoted in a message is cut to this, with an ellipsis

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = SHOWN_CHARS, SHOWN_CHARS, 4, 4, 2


class ConfigError(Exception):
    """A config problem, already worded for the user (`file: field: what is wrong`)."""


def show(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as a message quotes it: repr'd, cut to `limit` characters with an ellipsis.

    A 5 MB value must not become a 5 MB error line (in a terminal, a cron mail, journald).
    """
    return cut(repr(value[: limit + 1]) if isinstance(value, str) else _REPR.repr(value), limit)


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters, the last an ellipsis when anything was dropped."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_url(value: object) -> str:
    """A URL that may carry a password, as a message quotes it: masked, then cut."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"  # a list or mapping may hold the password: never repr it
    from veille.storage.db import describe

    return show(describe(value))


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s:]+(:\d+)?(/\S*)?$", value):
        raise ValueError(f"{show(value)} is not an http(s) URL")
    return value


def _regex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{show(value)} is not a valid regular expression ({cut(str(exc))})") from None
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str = DEFAULT_DATABASE_URL
    # crawl and digest runs (what `veille status` reads) older than this are forgotten at
    # the end of a crawl; 0 keeps them all. Articles, stories and digests are never pruned.
    keep_runs_days: int = Field(90, ge=0)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
            raise ValueError(f"{show_url(v)} is not a sqlite:// or postgresql:// URL")
        from sqlalchemy.engine import make_url

        try:
            make_url(v)
        except ValueError:  # ArgumentError is one; a port that is not a number too
            raise ValueError(f"{show_url(v)} is not a valid database URL "
                             "(scheme://user:password@host:port/name)") from None
        return v


class CrawlConfig(_Strict):
    user_agent: str = "veille/0.1 (+https://example.org/veille)"
    obey_robots: bool = True
    concurrency_per_domain: int = Field(2, ge=1, le=32)
    download_delay: float = Field(1.0, ge=0)
    max_pages_per_outlet: int = Field(300, ge=1)
    timeout: float = Field(30.0, gt=0, description="per-request download timeout, seconds")
    max_page_bytes: int = Field(5_000_000, ge=10_000)
    sitemap_max_age_days: int = Field(3, ge=1, description="sitemap entries older than this are skipped")
    wall_clock_limit: float = Field(3600.0, gt=0, description="a crawl is stopped after this many seconds")
    autothrottle: bool = True
    retries: int = Field(2, ge=0, le=10)
    queue: str | None = Field(None, description="redis://host:port/db for a shared frontier")
    queue_idle: float = Field(30.0, gt=0, allow_inf_nan=False,
                              description="with a queue: a worker stops once it stayed empty this many seconds")

    @field_validator("queue")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^rediss?://", v):
            raise ValueError(f"{show_url(v)} is not a redis:// URL")
        if v is not None:
            try:
                urlsplit(v).port  # noqa: B018 - parsed as redis-py parses it
            except ValueError:
                raise ValueError(f"{show_url(v)} is not a valid redis:// URL (write a / or @ "
                                 "in the password as %2F or %40)") from None
        return v


class OutletConfig(_Strict):
    name: str
    url: HttpUrl
    language: Literal["fr", "ar", "en"]
    feeds: list[HttpUrl] = []
    sitemaps: list[HttpUrl] = []
    sections: list[HttpUrl] = []
    article_pattern: Annotated[str | None, AfterValidator(_regex)] = None
    wp_json: bool = False
    google_news: bool = False
    republishes: bool = Field(False, description="an aggregator of other outlets' articles "
                              "(Maghress): its copy is never taken for the original")

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"{show(v)} is not a slug (lowercase letters, digits, - and _)")
        return v

    @property
    def domain(self) -> str:
        host = self.url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        return host.lower()


class TopicConfig(_Strict):
    name: str
    label: str = ""
    require: list[list[str]] = []
    boost: list[str] = []
    exclude: list[str] = []
    min_score: float = 1.0
    title_weight: float = Field(3.0, ge=1.0)

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"{show(v)} is not a slug (lowercase letters, digits, - and _)")
        return v

    @field_validator("require")
    @classmethod
    def _non_empty_groups(cls, v: list[list[str]]) -> list[list[str]]:
        for i, group in enumerate(v):
            if not group:
                raise ValueError(f"group {i} is empty: a require group needs at least one term")
        return v


def _schedule(value: str) -> str:
    parse_schedule(value)
    return value


Schedule = Annotated[str, AfterValidator(_schedule)]


class ScheduleConfig(_Strict):
    timezone: str = "Africa/Casablanca"
    crawl: Schedule = "*/30 * * * *"
    digest: Schedule | None = "0 7 * * *"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{show(v)} is not a known time zone (e.g. Africa/Casablanca)") from None
        return v


class SmtpConfig(_Strict):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password_env: str = "VEILLE_SMTP_PASSWORD"
    timeout: float = Field(30.0, gt=0)
    deadline: float = Field(300.0, gt=0, allow_inf_nan=False,
                            description="limit of one whole send, seconds (timeout is per socket operation)")
    verify: bool = True
    ca_file: str | None = None


class DigestConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    topics: list[str] = []
    to: list[str] = []
    from_: str = Field("veille@example.org", alias="from")
    subject: str = "Veille — {date}: {count} stories"
    send_empty: bool = False
    developing: bool = Field(True, description="a mailed story that gains articles comes back "
                             "under Developing with only those")
    developing_days: float = Field(7.0, gt=0, le=365, allow_inf_nan=False,
                                   description="how long after its first mail a story may come back, days")
    smtp: SmtpConfig = SmtpConfig()

    @field_validator("to")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for addr in v:
            if not re.match(r"^[^@\s]+@[^@\s]+$", addr):
                raise ValueError(f"{show(addr)} is not an email address")
        return v


class Config(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    crawl: CrawlConfig = CrawlConfig()
    outlets: list[OutletConfig] = []
    topics: list[TopicConfig] = []
    schedule: ScheduleConfig = ScheduleConfig()
    digest: DigestConfig = DigestConfig()
    source: str = Field(DEFAULT_CONFIG, exclude=True)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        _unique([o.name for o in self.outlets], "outlets", "outlet name")
        _unique([t.name for t in self.topics], "topics", "topic name")
        known = {t.name for t in self.topics}
        for i, name in enumerate(self.digest.topics):
            if name not in known:
                raise ValueError(f"digest.topics[{i}]: {show(name)} is not a configured topic")
        return self

    def outlet(self, name: str) -> OutletConfig:
        for o in self.outlets:
            if o.name == name:
                return o
        raise KeyError(name)


def _unique(names: list[str], where: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{where}[{i}]: duplicate {what} {show(name)} (also {where}[{seen[name]}])")
        seen[name] = i


def parse_schedule(value: str) -> timedelta | str:
    """Return a timedelta for an interval (`30s`, `15m`, `2h`, `1d`) or the cron string.

    Raises ValueError with a user-facing message when it is neither.
    """
    m = _INTERVAL.match(value.strip())
    if m:
        n = int(m.group(1))
        if n <= 0:
            raise ValueError(f"{show(value)}: an interval must be positive")
        return timedelta(**{_INTERVAL_UNITS[m.group(2)]: n})
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{show(value)} is neither a 5-field cron expression nor an interval like 30s, 15m, 2h"
        )
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"{show(value)} is not a valid cron expression ({cut(str(exc))})") from None
    return value


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in {"str", "list[str]"}:
            continue
        else:
            out += ("." if out else "") + cut(part)
    return out


def _format(source: str, exc: ValidationError, from_env: dict[str, str] | None = None) -> str:
    """One line for the first error; `from_env` maps a field path to the env variable that set it."""
    err = exc.errors()[0]
    loc = _loc(tuple(err["loc"]))
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    etype = err["type"]
    if etype == "extra_forbidden":
        msg = "unknown key (check the spelling)"
    elif etype == "missing":
        msg = "required key is missing"
    elif "input" in err and etype not in {"value_error", "assertion_error"}:
        shown = show_url(err["input"]) if loc in SECRET_FIELDS else show(err["input"])
        msg = f"{shown}: {msg.lower()}"
    msg = cut(msg, 3 * SHOWN_CHARS)
    if from_env and loc in from_env:  # the file is not at fault: name the variable
        return f"env {from_env[loc]} (overrides {loc}): {msg}"
    where = f"{loc}: " if loc else ""
    # model-level checks already carry their own path in the message
    return f"{source}: {where}{msg}"


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    return Path(path or os.environ.get("VEILLE_CONFIG") or DEFAULT_CONFIG)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses a document too big once its aliases are expanded.

    PyYAML shares an aliased node instead of copying it, so loading a billion-laughs
    document is quick; what explodes is everything that walks the result (validation,
    copies, reprs). Counting the expanded nodes on the node graph, before anything is
    built, refuses it in milliseconds.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        _expanded_size(node, {}, set())
        return super().construct_document(node)


class _TooBig(Exception):
    pass


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """Nodes under `node` with every alias expanded; raises _TooBig past the cap."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise _TooBig("an alias refers to the node that contains it (a recursive structure)")
    open_.add(key)
    n = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            n += _expanded_size(child, sizes, open_)
            if n > MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            n += _expanded_size(k, sizes, open_) + _expanded_size(v, sizes, open_)
            if n > MAX_EXPANDED_NODES:
                break
    open_.discard(key)
    if n > MAX_EXPANDED_NODES:
        raise _TooBig(f"over {MAX_EXPANDED_NODES:,} values once its aliases (*name) are "
                      "expanded: an alias bomb, or not a config")
    sizes[key] = n
    return n


def _read_capped(p: Path) -> str:
    """The file's text, refusing one over MAX_CONFIG_BYTES without reading it all."""
    with p.open("rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: config file is over {MAX_CONFIG_BYTES:,} bytes: not a config")
    return raw.decode("utf-8")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and apply env overrides. Raises ConfigError with a one-line message."""
    p = resolve_path(path)
    try:
        raw_text = _read_capped(p)
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found (use --config or VEILLE_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file ({cut(str(exc))})") from None
    try:
        data: Any = yaml.load(raw_text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader
    except _TooBig as exc:
        raise ConfigError(f"{p}: refused: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{p}: refused: nested too deeply to be a config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}: {where}YAML syntax error: {cut(problem)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections, got {type(data).__name__}")
    return config_from_dict(data, source=str(p))


def config_from_dict(data: dict[str, Any], source: str = DEFAULT_CONFIG,
                     environ: Mapping[str, str] | None = None) -> Config:
    """Validate a mapping as a config, with the overrides of `environ` (default: this
    process's environment, read here and nowhere else) applied."""
    data = dict(data)
    env = os.environ if environ is None else environ
    from_env: dict[str, str] = {}
    for var, (section, key) in ENV_OVERRIDES.items():
        value = env.get(var, "").strip()
        part = data.get(section) or {}
        if value and isinstance(part, dict):  # a section that is not a mapping is the file's error
            data[section] = {**part, key: value}
            from_env[f"{section}.{key}"] = var
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(source, exc, from_env)) from None
    return cfg.model_copy(update={"source": source})
