"""Agents: routing rules, live queue state and EWT, callbacks, the dialer and originations."""
