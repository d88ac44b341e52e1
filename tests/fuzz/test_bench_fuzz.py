"""bench/fuzz.py itself: a tiny campaign over every target, and a crash turns the exit status to 1."""

from __future__ import annotations

import pytest

from bench import fuzz
from lab.fuzz import targets


def test_a_short_campaign_over_every_target_reports_no_crash(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.main(["--cases", "90", "--show", "1"]) == 0
    out = capsys.readouterr().out
    for name in targets.TARGETS:
        assert f"\n{name} " in out
    total, crashes = out.rstrip().splitlines()[-1].split()[1:]
    assert int(total) >= 80 and crashes == "0"  # hypothesis may stop early on a target it has exhausted


def test_a_crash_is_counted_shown_and_fails_the_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crashes(text: str, variables: object) -> list[str]:
        raise KeyError(text)

    monkeypatch.setitem(targets.TARGETS, "condition", crashes)
    assert fuzz.main(["--cases", "5", "--only", "condition"]) == 1
    out = capsys.readouterr().out
    assert "CRASH KeyError" in out and out.rstrip().splitlines()[-1].split()[1:] == ["5", "5"]


def test_an_unknown_target_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        fuzz.main(["--only", "nope"])
    assert info.value.code == 2
