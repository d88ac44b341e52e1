"""What a caller may say at one prompt: phrases per choice, or spoken digits, as JSGF or a phrase list."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DIGIT_WORDS: dict[str, str] = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
REPEATERS: dict[str, int] = {"double": 2, "triple": 3}
# What the digits grammar lets the recogniser hear ("o" is text-only: the dictionary has "oh").
_SPOKEN_DIGITS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_WORD = re.compile(r"^[^\W\d_]+(?:'[^\W\d_]+)?$")  # letters of any script, one inner apostrophe
_SPLIT = re.compile(r"[\s\-_,.;:!?]+")
_KEY = re.compile(r"^[A-Za-z0-9_]+$")
MAX_PHRASE_WORDS = 12
MAX_PHRASES = 500


def normalize(text: str) -> str:
    """Lower-case, punctuation to spaces (apostrophes inside words kept), single spaces."""
    cleaned = text.replace("\u2019", "'").lower()
    words = [w.strip("'\"()[]") for w in _SPLIT.split(cleaned)]
    return " ".join(w for w in words if w)


def words_to_digits(text: str) -> str | None:
    """Spoken digits to a digit string: "four oh double seven" → "4077"; None if anything else was said.

    Accepts digit words (zero/oh/o/one … nine), bare digits ("1 2 3"), and "double"/"triple" before a digit.
    """
    out: list[str] = []
    repeat = 1
    tokens = normalize(text).split()
    if not tokens:
        return None
    for token in tokens:
        if token in REPEATERS:
            if repeat != 1:
                return None
            repeat = REPEATERS[token]
            continue
        if token.isdigit():
            digits = token
        elif token in DIGIT_WORDS:
            digits = DIGIT_WORDS[token]
        else:
            return None
        out.append(digits[0] * repeat + digits[1:])
        repeat = 1
    if repeat != 1:  # "double" at the end
        return None
    return "".join(out)


@dataclass(frozen=True)
class Grammar:
    """The phrases a caller may say, grouped by choice; or spoken digits (`digits=True`).

    Build it with `Grammar.from_phrases` or `Grammar.spoken_digits`; phrases are kept normalised
    (lower case, words of letters of any script with an optional inner apostrophe), so recognised text can be
    compared with them as is.
    """

    choices: Mapping[str, tuple[str, ...]]
    digits: bool = False
    min_digits: int = 1
    max_digits: int = 20
    _index: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_phrases(cls, choices: Mapping[str, Iterable[str]]) -> Grammar:
        """`{"balance": ["balance", "how much do I owe"], "agent": [...]}` → a phrase grammar.

        Raises ValueError naming the choice and phrase when a phrase is empty, has characters that are
        not letters (write "twenty four", not "24"), is too long, or belongs to two choices.
        """
        table: dict[str, tuple[str, ...]] = {}
        index: dict[str, str] = {}
        for key, phrases in choices.items():
            if not _KEY.match(key):
                raise ValueError(f"choice name {key!r} must be letters, digits or _")
            kept: list[str] = []
            for raw in phrases:
                phrase = normalize(raw)
                bad = [w for w in phrase.split() if not _WORD.match(w)]
                if not phrase:
                    raise ValueError(f"choice {key!r}: empty phrase {raw!r}")
                if bad:
                    raise ValueError(f"choice {key!r}: phrase {raw!r} has non-words {bad} (spell numbers out)")
                if len(phrase.split()) > MAX_PHRASE_WORDS:
                    raise ValueError(f"choice {key!r}: phrase {raw!r} is longer than {MAX_PHRASE_WORDS} words")
                other = index.get(phrase)
                if other is not None and other != key:
                    raise ValueError(f"phrase {raw!r} is in both {other!r} and {key!r}")
                if other is None:
                    index[phrase] = key
                    kept.append(phrase)
            if not kept:
                raise ValueError(f"choice {key!r} has no phrases")
            table[key] = tuple(kept)
        if not table:
            raise ValueError("a grammar needs at least one choice")
        if len(index) > MAX_PHRASES:
            raise ValueError(f"a grammar holds at most {MAX_PHRASES} phrases")
        return cls(choices=table, _index=index)

    @classmethod
    def spoken_digits(cls, min_digits: int = 1, max_digits: int = 20) -> Grammar:
        """Digits said one by one ("one two three", "oh", "zero"), min..max of them."""
        if not 1 <= min_digits <= max_digits <= 40:
            raise ValueError("need 1 <= min_digits <= max_digits <= 40")
        return cls(choices={}, digits=True, min_digits=min_digits, max_digits=max_digits)

    # ------------------------------------------------------------ views

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every phrase, in choice order (for a digits grammar: the digit words)."""
        if self.digits:
            return _SPOKEN_DIGITS
        return tuple(self._index)

    @property
    def words(self) -> frozenset[str]:
        """Every word the recogniser must know."""
        return frozenset(w for p in self.phrases for w in p.split())

    @property
    def key(self) -> str:
        """A short stable id of the grammar's content (recognisers cache compiled grammars by it)."""
        if self.digits:
            return f"digits_{self.min_digits}_{self.max_digits}"
        body = "\n".join(f"{k}\t{p}" for k, ps in self.choices.items() for p in ps)
        return "g" + hashlib.sha256(body.encode()).hexdigest()[:16]

    def choice_of(self, text: str) -> str | None:
        """The choice whose phrase is exactly `text` (after normalising), else None."""
        return self._index.get(normalize(text))

    def accepts(self, text: str) -> bool:
        """Whether `text` is a complete sentence of this grammar."""
        if self.digits:
            value = words_to_digits(text)
            return value is not None and self.min_digits <= len(value) <= self.max_digits
        return normalize(text) in self._index

    # ------------------------------------------------------------ JSGF

    def to_jsgf(self, name: str = "ivr") -> str:
        """The grammar in JSGF (one public rule `<utterance>`), as pocketsphinx reads it."""
        lines = ["#JSGF V1.0;", f"grammar {name};"]
        if self.digits:
            # Measured (bench/speech_bench.py): a plain loop beats nested optionals and "double"/"triple"
            # items on accuracy and speed; an exact length, when known, is better still. The length range
            # is enforced on the result (`accepts`), "double"/"triple" only when normalising free text.
            lines.append("<digit> = " + " | ".join(_SPOKEN_DIGITS) + ";")
            if self.min_digits == self.max_digits:
                lines.append("public <utterance> = " + " ".join(["<digit>"] * self.min_digits) + ";")
            else:
                lines.append("public <utterance> = <digit>+;")
        else:
            alternatives = " | ".join(f"<c_{key}>" for key in self.choices)
            for key, phrases in self.choices.items():
                lines.append(f"<c_{key}> = " + " | ".join(f"({p})" for p in phrases) + ";")
            lines.append(f"public <utterance> = {alternatives};")
        return "\n".join(lines) + "\n"
