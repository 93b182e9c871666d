"""`python -m bench.report`: its arguments, and one line for a results file it cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import main


def test_help_is_usage_not_a_file_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0 and "usage: python -m bench.report" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "{not json"])
def test_an_unreadable_results_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                content: str | None) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as ended:
        main([str(path)])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and err.count("\n") == 1 and f"cannot read {path}" in err


def test_the_archive_table_of_the_shipped_results(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--archive"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| archive") and "| sqlite 10,000" in out
