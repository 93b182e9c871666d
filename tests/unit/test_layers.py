"""The layers import one way: the operator layer (veille.*) → veille.crawler →
veille.pipeline → veille.storage. An import against that direction, or of a bare
top-level `crawler`/`pipeline`/`storage` (names other distributions use), fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"app": 0, "crawler": 1, "pipeline": 2, "storage": 3}  # folder → depth
NAMES = {0: "operator layer (veille)", 1: "veille.crawler", 2: "veille.pipeline",
         3: "veille.storage"}
SUBPACKAGES = {"crawler": 1, "pipeline": 2, "storage": 3}


def depth_of(module: str) -> int | None:
    """Layer depth of an imported module name, None when it is not ours."""
    parts = module.split(".")
    if parts[0] != "veille":
        return None
    return SUBPACKAGES.get(parts[1], 0) if len(parts) > 1 else 0


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, function-level ones included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def violations(root: Path = ROOT) -> list[str]:
    bad: list[str] = []
    for folder, depth in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            for line, module in imports(path):
                where = f"{path.relative_to(root)}:{line}"
                if module.split(".")[0] in SUBPACKAGES:
                    bad.append(f"{where}: imports top-level {module!r}; use veille.{module}")
                target = depth_of(module)
                if target is not None and target < depth:
                    bad.append(f"{where}: {NAMES[depth]} imports {module} ({NAMES[target]}, "
                               "a higher layer)")
    return bad


def test_layers_import_one_way() -> None:
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    (tmp_path / "storage" / "bad.py").write_text(
        "def f():\n    from veille.pipeline.config import Config\n    import crawler.run\n")
    (tmp_path / "crawler" / "ok.py").write_text("from veille.storage import db\n")
    found = violations(tmp_path)
    assert len(found) == 2 and "veille.storage imports veille.pipeline.config" in found[0]
    assert "top-level 'crawler.run'" in found[1]


@pytest.mark.parametrize("module, depth", [("veille", 0), ("veille.cli", 0), ("veille.crawler.run", 1),
                                           ("veille.storage", 3), ("os", None)])
def test_depth_of(module: str, depth: int | None) -> None:
    assert depth_of(module) == depth
