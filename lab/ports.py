"""Free loopback ports for one test session (several sessions may run at once)."""

from __future__ import annotations

import random
import socket


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody has bound right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _udp_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_udp_range(count: int, lo: int = 20000, hi: int = 32000, host: str = "127.0.0.1") -> int:
    """The first port of `count` consecutive free UDP ports, even-aligned (RTP), below the
    kernel's ephemeral range so that kernel-chosen ports do not land in it."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(lo, hi - count) & ~1
        if all(_udp_free(p, host) for p in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free UDP ports in {lo}-{hi}")
