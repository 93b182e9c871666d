"""The wheel installs one import package, `veille`, and its demo runs from anywhere.

Built offline (no build isolation: the dev extra brings setuptools), installed without
dependencies into a fresh venv that borrows this venv's third-party packages, then run
from an empty folder, where no checkout can shadow or stand in for the package.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_wheel_installs_only_veille_and_its_demo_runs_from_an_empty_folder(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "-w", dist, ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("veille-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    site.mkdir(parents=True, exist_ok=True)
    borrowed = [p for p in sys.path if p.endswith("site-packages")]  # third parties only
    (site / "zz_deps.pth").write_text("\n".join(borrowed) + "\n")
    python = venv / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                    "--no-index", wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]

    empty = tmp_path / "empty"
    empty.mkdir()
    for other in ("crawler", "pipeline", "storage"):
        probe = run(python, "-c", f"import {other}", cwd=empty)
        assert probe.returncode != 0 and "No module named" in probe.stderr, other
    where = run(python, "-c", "import veille; print(veille.__file__)", cwd=empty)
    assert str(venv) in where.stdout, where.stdout + where.stderr

    demo = run(venv / "bin" / "veille", "demo", cwd=empty)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (empty / "demo" / "digest.eml").stat().st_size > 0
    with sqlite3.connect(empty / "demo" / "veille.db") as db:
        (articles,), (flagged,) = (db.execute("select count(*) from articles").fetchone(),
                                   db.execute("select count(*) from topic_matches").fetchone())
    assert articles >= 30 and flagged > 0, (articles, flagged)
