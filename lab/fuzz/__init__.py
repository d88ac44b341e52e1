"""Fuzzing the parsers: one invariant per parser (`targets`) and near-valid inputs (`strategies`).

Shared by the property tests (tests/fuzz) and `bench/fuzz.py`. `strategies` needs hypothesis
(the `dev` extra); `targets` needs nothing beyond the service.
"""
