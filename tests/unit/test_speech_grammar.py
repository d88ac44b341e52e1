"""Grammars (phrase lists → JSGF), digits grammars and spoken-digit normalisation."""

from __future__ import annotations

import pytest

from ivr.speech.grammar import Grammar, normalize, words_to_digits

MENU = {
    "balance": ["Balance", "how much do I owe?", "why is my bill so high"],
    "agent": ["agent", "talk to a person", "representative"],
}


def test_phrases_are_normalised_and_indexed_by_choice() -> None:
    g = Grammar.from_phrases(MENU)
    assert g.choices["balance"] == ("balance", "how much do i owe", "why is my bill so high")
    assert g.choice_of("How much do I OWE") == "balance"
    assert g.choice_of("talk  to a person.") == "agent"
    assert g.choice_of("talk to a") is None
    assert g.accepts("representative") and not g.accepts("cancel")
    assert "owe" in g.words and "agent" in g.words
    assert len(g.phrases) == 6


def test_jsgf_has_one_rule_per_choice_and_a_public_top_rule() -> None:
    jsgf = Grammar.from_phrases(MENU).to_jsgf()
    assert jsgf.startswith("#JSGF V1.0;\ngrammar ivr;\n")
    assert "<c_balance> = (balance) | (how much do i owe) | (why is my bill so high);" in jsgf
    assert "<c_agent> = (agent) | (talk to a person) | (representative);" in jsgf
    assert "public <utterance> = <c_balance> | <c_agent>;" in jsgf


def test_key_is_stable_and_content_based() -> None:
    a = Grammar.from_phrases(MENU)
    b = Grammar.from_phrases({k: list(v) for k, v in MENU.items()})
    c = Grammar.from_phrases({"balance": ["balance"]})
    assert a.key == b.key != c.key
    assert Grammar.spoken_digits(4, 6).key == "digits_4_6"


def test_apostrophes_and_other_scripts_are_words() -> None:
    g = Grammar.from_phrases({"no": ["I don't know"], "ko": ["하나 둘"]})
    assert g.choice_of("i don’t know") == "no"
    assert g.choice_of("하나 둘") == "ko"


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"a": ["press 1"]}, "non-words"),
        ({"a": [""]}, "empty phrase"),
        ({"a": ["!!"]}, "empty phrase"),
        ({"a": []}, "no phrases"),
        ({}, "at least one choice"),
        ({"a b": ["x"]}, "choice name"),
        ({"a": ["same"], "b": ["Same"]}, "in both"),
        ({"a": [" ".join(["word"] * 13)]}, "longer than"),
    ],
)
def test_bad_grammars_are_refused_with_the_reason(choices: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Grammar.from_phrases(choices)


def test_duplicate_phrase_in_one_choice_is_kept_once() -> None:
    g = Grammar.from_phrases({"a": ["agent", "Agent"]})
    assert g.choices["a"] == ("agent",)


def test_digits_grammar_jsgf_and_bounds() -> None:
    g = Grammar.spoken_digits(4, 6)
    jsgf = g.to_jsgf()
    assert "<digit> = zero | oh | one | two | three | four | five | six | seven | eight | nine;" in jsgf
    assert "public <utterance> = <digit>+;" in jsgf
    assert "public <utterance> = <digit> <digit> <digit>;" in Grammar.spoken_digits(3, 3).to_jsgf()
    assert g.accepts("one two three four") and g.accepts("double one two three")
    assert not g.accepts("one two three") and not g.accepts("one two three four five six seven")
    assert not g.accepts("one cat two three")
    assert "oh" in g.words and "double" not in g.words
    with pytest.raises(ValueError):
        Grammar.spoken_digits(5, 4)


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("one two three", "123"),
        ("oh four five", "045"),
        ("zero nine eight", "098"),
        ("O seven", "07"),
        ("double five one", "551"),
        ("triple nine", "999"),
        ("1 2 3", "123"),
        ("four-four two, one.", "4421"),
        ("double 7", "77"),
    ],
)
def test_words_to_digits(text: str, digits: str) -> None:
    assert words_to_digits(text) == digits


@pytest.mark.parametrize("text", ["", "one two cat", "double", "one double", "double double one", "twenty"])
def test_words_to_digits_refuses_anything_else(text: str) -> None:
    assert words_to_digits(text) is None


def test_normalize() -> None:
    assert normalize("  Hello,  World! ") == "hello world"
    assert normalize("it's (me)") == "it's me"
