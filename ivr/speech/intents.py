"""Recognised text → the menu choice it means: exact phrase first, then a tolerant word-overlap fallback."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.speech.grammar import Grammar, normalize, words_to_digits
from ivr.speech.recognizer import Recognition

# Words that carry no choice on their own ("I want to talk to a person" ~ "person").
STOP_WORDS = frozenset(
    "a an the i i'd i'm me my mine to of for in on at and or is are am be it that this do does can could "
    "would like want wanna please uh um er hmm just so you your with about some".split()
)
TOLERANT_PENALTY = 0.85  # a fallback match never scores as high as an exact phrase
# A grammar engine forces any speech onto some phrase. Out-of-grammar speech ("I'd like a large pizza with
# extra cheese" → "where is my order", confidence 0.8) is usually much longer than the phrase it was forced
# onto: espeak-ng said the demo menu phrases at ~0.2 s per (counted) syllable, the pizza at 0.46. A phrase is
# refused when the speech lasted longer than SLACK + SECONDS_PER_SYLLABLE x its syllables.
SECONDS_PER_SYLLABLE = 0.3
LENGTH_SLACK = 0.5
_VOWELS = re.compile(r"[aeiouyàèéìòóùäöü]+")


def syllables(phrase: str) -> int:
    """A rough syllable count (vowel groups, at least one per word)."""
    return sum(max(1, len(_VOWELS.findall(word))) for word in normalize(phrase).split())


def too_long_for(recognition: Recognition, phrase: str) -> bool:
    """The caller spoke for much longer than `phrase` takes: likely out-of-grammar speech forced onto it."""
    spoken = recognition.speech_seconds
    return spoken > 0 and spoken > LENGTH_SLACK + SECONDS_PER_SYLLABLE * syllables(phrase)


@dataclass(frozen=True)
class IntentMatch:
    """The choice a recognition was mapped to."""

    intent: str
    confidence: float  # recogniser confidence, times the overlap score for tolerant matches
    phrase: str  # the grammar phrase that matched
    exact: bool  # the whole recognised text was that phrase


def content_words(text: str) -> frozenset[str]:
    """The words of `text` that are not stop words (all of them if every word is a stop word)."""
    words = normalize(text.replace("[unk]", " ")).split()
    kept = frozenset(w for w in words if w not in STOP_WORDS)
    return kept or frozenset(words)


def overlap(text: str, phrase: str) -> float:
    """How well `text` covers `phrase`: shared content words over the phrase's, damped by extra words."""
    said, wanted = content_words(text), content_words(phrase)
    if not said or not wanted:
        return 0.0
    shared = len(said & wanted)
    if shared == 0:
        return 0.0
    recall = shared / len(wanted)
    precision = shared / len(said)
    return recall * (0.5 + 0.5 * precision)


class IntentMatcher:
    """Maps recognitions to the choices of one grammar.

    threshold: minimum confidence to accept (below it, `match` returns None: ask again).
    min_overlap: minimum word-overlap score for the tolerant fallback (1.0 turns it off).
    A tolerant match must also be unambiguous: the best choice must beat every other by `margin`.
    check_length: refuse an exact match when the speech was far longer than the phrase (`too_long_for`).
    """

    def __init__(
        self, grammar: Grammar, *, threshold: float = 0.5, min_overlap: float = 0.5, margin: float = 0.15,
        check_length: bool = True,
    ) -> None:
        if grammar.digits:
            raise ValueError("a digits grammar has no choices: use `digits_of`")
        self.grammar = grammar
        self.threshold = threshold
        self.min_overlap = min_overlap
        self.margin = margin
        self.check_length = check_length  # refuse a phrase the speech was far too long for (`too_long_for`)

    def match(self, recognition: Recognition) -> IntentMatch | None:
        """The choice meant by the recognition or one of its alternatives; None = no match."""
        candidates = [(recognition.text, recognition.confidence)]
        candidates += [(a.text, a.confidence) for a in recognition.alternatives]
        for text, confidence in candidates:
            found = self.match_text(text, confidence)
            if found is not None and self.check_length and too_long_for(recognition, text):
                continue
            if found is not None:
                return found
        return None

    def match_text(self, text: str, confidence: float = 1.0) -> IntentMatch | None:
        """Map plain text (with the recogniser's confidence for it)."""
        if not text.strip():
            return None
        intent = self.grammar.choice_of(text)
        if intent is not None:
            if confidence < self.threshold:
                return None
            return IntentMatch(intent, confidence, normalize(text), exact=True)
        return self._tolerant(text, confidence)

    def _tolerant(self, text: str, confidence: float) -> IntentMatch | None:
        best: dict[str, tuple[float, str]] = {}
        for intent, phrases in self.grammar.choices.items():
            for phrase in phrases:
                score = overlap(text, phrase)
                if score > best.get(intent, (0.0, ""))[0]:
                    best[intent] = (score, phrase)
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)
        intent, (score, phrase) = ranked[0]
        if score < self.min_overlap:
            return None
        if len(ranked) > 1 and score - ranked[1][1][0] < self.margin:
            return None  # "agent balance": ambiguous, ask again
        scaled = confidence * score * TOLERANT_PENALTY
        if scaled < self.threshold:
            return None
        return IntentMatch(intent, scaled, phrase, exact=False)


def digits_of(recognition: Recognition, grammar: Grammar, *, threshold: float = 0.5) -> str | None:
    """The digit string a digits-grammar recognition means, or None (no match, too few/many, too unsure)."""
    if recognition.confidence < threshold:
        return None
    value = words_to_digits(recognition.text)
    if value is None or not grammar.min_digits <= len(value) <= grammar.max_digits:
        return None
    return value
