"""lab.audio.ulaw_to_linear: the μ-law decode that turns espeak-ng clips into what Asterisk hands over."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from lab.audio import ulaw_to_linear

EVERY_CODE = bytes(range(256))


def _g711_reference() -> list[int]:
    """ITU-T G.711 μ-law expansion, as in Sun's g711.c (bias 0x84, codes stored inverted)."""
    out = []
    for code in EVERY_CODE:
        u = ~code & 0xFF
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
        out.append(-magnitude if u & 0x80 else magnitude)
    return out


def test_ulaw_known_values() -> None:
    # 0xFF and 0x7F are the two zeros; 0x00 is the most negative, 0x80 the most positive.
    assert np.frombuffer(ulaw_to_linear(b"\xff\x7f\x00\x80"), "<i2").tolist() == [0, 0, -32124, 32124]
    assert ulaw_to_linear(b"") == b""


def test_every_code_decodes_as_g711_says() -> None:
    assert np.frombuffer(ulaw_to_linear(EVERY_CODE), "<i2").tolist() == _g711_reference()


def test_ulaw_matches_sox_where_sox_is_installed() -> None:
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    decoded = subprocess.run(
        ["sox", "-t", "raw", "-r", "8000", "-e", "mu-law", "-b", "8", "-c", "1", "-", "-t", "raw",
         "-e", "signed", "-b", "16", "-"], input=EVERY_CODE, capture_output=True, check=True,
    ).stdout
    assert ulaw_to_linear(EVERY_CODE) == decoded
