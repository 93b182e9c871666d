"""What the benchmarks share: figures, machine info, bench configs, child processes, the DB.

A `Figure` is one line of the results table: a value, the baseline measured in the same
run, their ratio and the target the ratio (or the value) must meet. Benchmarks never
assert; they report.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# Fast and unthrottled against 127.0.0.1: the benchmark measures veille, not politeness.
BENCH_CRAWL: dict[str, Any] = {
    "download_delay": 0,
    "autothrottle": False,
    "concurrency_per_domain": 16,
    "max_pages_per_outlet": 100_000,
    "sitemap_max_age_days": 3650,
    "timeout": 30,
    "retries": 1,
    "wall_clock_limit": 1800,
}


@dataclass
class Figure:
    """One measured figure. `ratio` is value/baseline; `met` compares ratio (or value) to target."""

    bench: str
    name: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""  # human-readable, e.g. "≥ 1.0"
    met: bool | None = None  # None: informational, no target
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def machine() -> dict[str, Any]:
    """CPU count and model, memory, Python, OS and the date: printed next to every result."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
        affinity = len(psutil.Process().cpu_affinity() or [])
    except (ImportError, AttributeError, OSError):
        mem_gb, affinity = None, None
    return {
        "cpus": os.cpu_count(), "cpus_usable": affinity or os.cpu_count(), "cpu_model": model,
        "memory_gb": mem_gb, "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git_head(),
    }


def _git_head() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def repo_topics() -> list[dict[str, Any]]:
    """The product's real topic rules, from the repository's config.yaml."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")) or {}
    return list(data.get("topics") or [])


def bench_config(outlets: list[dict[str, Any]], db_path: Path, **overrides: Any) -> dict[str, Any]:
    """A config dict crawling `outlets` (from ReplayServer.outlet_configs) into a SQLite file."""
    crawl = {**BENCH_CRAWL, **overrides.pop("crawl", {})}
    return {"database": {"url": f"sqlite:///{db_path}"}, "crawl": crawl, "outlets": outlets,
            "topics": repo_topics(), **overrides}


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def child_env() -> dict[str, str]:
    """Environment of a veille child: the repository importable, no env overrides of the DB."""
    env = dict(os.environ)
    env.pop("VEILLE_DATABASE_URL", None)
    env.pop("VEILLE_CONFIG", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


@dataclass
class ChildRun:
    code: int
    seconds: float
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # the whole process tree (workers included), sampled
    peak_rss: int = 0  # bytes, the whole process tree, sampled


class TreeMonitor:
    """Samples CPU time and RSS of a process and all its descendants (psutil), in a thread.

    Per-process CPU times are kept at their last sampled value, so a worker that exits
    between samples loses at most one interval of CPU time.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        import threading

        self.pid = pid
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="tree-monitor")
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            rss = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
                    rss += p.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def run_child(cmd: list[str], timeout: float = 1800, cwd: Path | None = None,
              monitor: bool = False) -> ChildRun:
    """Run a command to completion, timed from spawn to exit (wall clock)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd or ROOT, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    mon = TreeMonitor(proc.pid) if monitor else None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if mon is not None:
        mon.stop()
    return ChildRun(proc.returncode, seconds, out, err, mon.cpu_seconds if mon else 0.0,
                    mon.peak_rss if mon else 0)


def veille(*args: str) -> list[str]:
    """The `veille` console script of this interpreter's environment (or the module)."""
    script = VENV_BIN / "veille"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "veille.cli", *args]


def db_counts(db_path: Path) -> dict[str, int]:
    """Row counts the benchmarks report: articles, stories, pages by kind, crawl runs."""
    import sqlite3

    con = sqlite3.connect(db_path)
    try:
        one = lambda sql: int(con.execute(sql).fetchone()[0])  # noqa: E731
        out = {
            "articles": one("select count(*) from articles"),
            "stories": one("select count(*) from stories"),
            "pages": one("select count(*) from pages"),
            "pages_article": one("select count(*) from pages where article_id is not null"),
            "crawl_runs": one("select count(*) from crawl_runs where kind = 'crawl'"),
        }
        for kind, n in con.execute("select kind, count(*) from pages group by kind"):
            out[f"pages_{kind}"] = int(n)
        return out
    finally:
        con.close()


def expected_articles(root: Path) -> dict[str, list[dict[str, Any]]]:
    """outlet name -> the `articles` of its expected.yaml (fast C loader when available)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = {}
    for f in sorted(Path(root).glob("*/expected.yaml")):
        data = yaml.load(f.read_text(encoding="utf-8"), Loader=loader) or {}
        out[f.parent.name] = list(data.get("articles") or [])
    return out


def log(msg: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Workspace:
    """One benchmark run's corpus, replay server and first crawl, shared by the benchmarks.

    The corpus is generated on first use, the server started on first use; `close()`
    stops the server. `first_crawl` is set by whichever benchmark crawls the corpus first
    into a fresh database (throughput), so incremental re-crawls that database.
    """

    def __init__(self, workdir: Path, pages: int = 2000, seed: int = 7) -> None:
        self.workdir = Path(workdir)
        self.pages = pages
        self.seed = seed
        self._corpus: Path | None = None
        self._server: Any = None
        self.manifest: Any = None
        self.first_crawl: CrawlResult | None = None
        self.extra: dict[str, Any] = {}  # sections of results.json besides the figures

    @property
    def corpus(self) -> Path:
        if self._corpus is None:
            from bench.corpus import generate

            root = self.workdir / "corpus"
            self.manifest = generate(root, self.pages, self.seed)
            log(f"corpus: {self.manifest.pages} pages, {len(self.manifest.outlets)} outlets, "
                f"{self.manifest.bytes / 2**20:.0f} MiB in {self.manifest.seconds:.1f}s")
            self._corpus = root
        return self._corpus

    @property
    def server(self) -> Any:
        if self._server is None:
            from veille.crawler.replay import ReplayServer

            self._server = ReplayServer(self.corpus).start()
        return self._server

    def article_paths(self) -> dict[str, set[str]]:
        return {o: {a["path"] for a in arts} for o, arts in expected_articles(self.corpus).items()}

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class CrawlResult:
    code: int
    seconds: float
    db_path: Path
    config_path: Path
    counts: dict[str, int]
    requests: int  # every request the replay server saw
    article_gets: int  # requests of article pages (any status)
    source_gets: int
    conditional: int  # requests carrying If-None-Match / If-Modified-Since
    cpu_seconds: float = 0.0
    peak_rss: int = 0
    stderr_tail: str = ""


def crawl(ws: Workspace, db_path: Path, *, profiler: list[str] | None = None,
          prelude: str | None = None, timeout: float = 1800, **crawl_overrides: Any) -> CrawlResult:
    """`veille crawl` of the corpus in a child process, timed from spawn to exit.

    Args:
        profiler: a command prefix the crawl runs under (`python -m veille.cli crawl ...`
            is appended), e.g. py-spy or pyinstrument (see bench.profile).
        prelude: Python statements run in the child before `veille crawl` (what-if
            experiments, e.g. other GC thresholds), instead of the console script.
    """
    srv = ws.server
    cfg_path = write_config(db_path.with_suffix(".yaml"),
                            bench_config(srv.outlet_configs(), db_path, crawl=crawl_overrides))
    srv.clear_log()
    cmd = veille("crawl", "--config", str(cfg_path))
    if prelude:
        cmd = [sys.executable, "-c", f"{prelude}\nimport sys\nfrom veille.cli import main\n"
               f"sys.argv = ['veille', 'crawl', '--config', {str(cfg_path)!r}]\nsys.exit(main())"]
    if profiler:
        cmd = [*profiler, sys.executable, "-m", "veille.cli", "crawl", "--config", str(cfg_path)]
        if profiler[0] == sys.executable:  # python -m pyinstrument ... -m veille.cli
            cmd = [*profiler, "-m", "veille.cli", "crawl", "--config", str(cfg_path)]
    run = run_child(cmd, timeout=timeout, monitor=not profiler)
    articles = ws.article_paths()
    entries = srv.access_log
    art = sum(1 for e in entries if e.path in articles.get(e.outlet, ()))
    return CrawlResult(run.code, run.seconds, db_path, cfg_path, db_counts(db_path), len(entries), art,
                       len(entries) - art, sum(e.conditional for e in entries),
                       run.cpu_seconds, run.peak_rss, "\n".join((run.stderr or run.stdout).strip().splitlines()[-15:]))
