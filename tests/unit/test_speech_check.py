"""`ivr check` on flows that listen: unknown words in phrases, languages without a model, bad phrases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.cli import main
from tests.appkit import ROOT

FLOW = """flow: main
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options: {"1": bye, "0": bye}
    say:
      "1":
        - balance
        - "how much do I owe"
        - "frobnicate my zorblax"
      "0": [agent, operator]
    next: {invalid: bye, timeout: bye}
  bye: {type: hangup}
"""


def project(tmp_path: Path, flow: str) -> Path:
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "main.yaml").write_text(flow)
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    return tmp_path


def test_unknown_words_and_languages_without_a_model_are_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    root = project(tmp_path, FLOW)
    assert main(["check", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    flow = root / "dialplans" / "main.yaml"
    assert (f"{flow}:12: warning: node 'menu': say '1': phrase 'frobnicate my zorblax' can never be recognised "
            "(pocketsphinx does not know frobnicate, zorblax)") in out
    assert any(line.startswith(f"{flow}:4: warning: node 'menu': no speech recogniser for language 'it'")
               for line in out), out


def test_a_phrase_with_digits_or_in_two_options_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    bad = FLOW.replace('"frobnicate my zorblax"', '"press 24"').replace("[agent, operator]", "[agent, balance]")
    root = project(tmp_path, bad)
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "error: node 'menu': say: choice 'k1': phrase 'press 24' has non-words ['24'] (spell numbers out)" in out


def test_say_for_a_key_that_is_not_an_option_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    root = project(tmp_path, FLOW.replace('"0": [agent, operator]', '"5": [agent, operator]'))
    assert main(["check", str(root)]) == 1
    assert "say: '5' is not one of the options" in capsys.readouterr().out
