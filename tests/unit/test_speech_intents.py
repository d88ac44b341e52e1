"""Recognised text → intent: exact phrases, synonyms, tolerant overlap, thresholds, no-match."""

from __future__ import annotations

import pytest

from ivr.speech.endpoint import EndReason
from ivr.speech.grammar import Grammar
from ivr.speech.intents import IntentMatcher, content_words, digits_of, overlap
from ivr.speech.recognizer import Alternative, Recognition

GRAMMAR = Grammar.from_phrases({
    "balance": ["balance", "account balance", "how much do I owe", "why is my bill so high"],
    "payment": ["make a payment", "pay my bill"],
    "agent": ["agent", "representative", "talk to a person", "operator"],
})


def rec(text: str, confidence: float = 0.9, alternatives: tuple[Alternative, ...] = ()) -> Recognition:
    return Recognition(text, confidence, alternatives)


@pytest.mark.parametrize(
    ("text", "intent"),
    [("balance", "balance"), ("why is my bill so high", "balance"), ("operator", "agent"),
     ("Talk to a person", "agent"), ("pay my bill", "payment")],
)
def test_exact_phrases_and_synonyms(text: str, intent: str) -> None:
    match = IntentMatcher(GRAMMAR).match(rec(text))
    assert match is not None
    assert (match.intent, match.exact, match.confidence) == (intent, True, 0.9)


def test_threshold_rejects_unsure_results() -> None:
    matcher = IntentMatcher(GRAMMAR, threshold=0.6)
    assert matcher.match(rec("agent", 0.59)) is None
    found = matcher.match(rec("agent", 0.6))
    assert found is not None and found.intent == "agent"


def test_no_match() -> None:
    matcher = IntentMatcher(GRAMMAR)
    assert matcher.match(rec("")) is None
    assert matcher.match(Recognition("", 0.0, ended_by=EndReason.NO_INPUT)) is None
    assert matcher.match(rec("what is the weather like")) is None


def test_tolerant_fallback_on_word_overlap() -> None:
    matcher = IntentMatcher(GRAMMAR)
    found = matcher.match(rec("i'd like to check my balance please", 1.0))
    assert found is not None
    assert (found.intent, found.exact, found.phrase) == ("balance", False, "balance")
    assert found.confidence < 1.0  # never as sure as an exact phrase
    found = matcher.match(rec("can i speak to a representative", 1.0))
    assert found is not None and found.intent == "agent"


def test_tolerant_fallback_refuses_ambiguity_and_weak_overlap() -> None:
    matcher = IntentMatcher(GRAMMAR)
    assert matcher.match(rec("agent balance", 1.0)) is None  # two choices equally
    assert matcher.match(rec("my bill", 1.0)) is None  # "pay my bill" vs "why is my bill so high"
    assert IntentMatcher(GRAMMAR, min_overlap=1.01).match(rec("check my balance please", 1.0)) is None


def test_tolerant_fallback_also_needs_the_threshold() -> None:
    matcher = IntentMatcher(GRAMMAR, threshold=0.5)
    assert matcher.match(rec("check my balance please", 0.55)) is None


def test_alternatives_are_tried_in_order() -> None:
    r = rec("", 0.0, (Alternative("cancel everything", 0.8), Alternative("operator", 0.7)))
    found = IntentMatcher(GRAMMAR).match(r)
    assert found is not None and found.intent == "agent" and found.confidence == 0.7


def test_content_words_and_overlap() -> None:
    assert content_words("I want to talk to a person") == {"talk", "person"}
    assert content_words("to a") == {"to", "a"}
    assert content_words("pay [unk] bill") == {"pay", "bill"}
    assert overlap("balance", "account balance") == 0.5
    assert overlap("account balance", "account balance") == 1.0
    assert overlap("hello", "balance") == 0.0
    assert overlap("", "balance") == 0.0


def test_digits_grammar_has_no_intents() -> None:
    with pytest.raises(ValueError):
        IntentMatcher(Grammar.spoken_digits())


def test_digits_of() -> None:
    g = Grammar.spoken_digits(3, 5)
    assert digits_of(rec("one two three"), g) == "123"
    assert digits_of(rec("oh double seven"), g) == "077"
    assert digits_of(rec("one two"), g) is None
    assert digits_of(rec("one two three", 0.2), g) is None
    assert digits_of(rec(""), g) is None
