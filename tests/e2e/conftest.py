"""e2e fixtures: one private Asterisk (from the chroot) per test session.

Needs root and the chroot built by scripts/asterisk-chroot; without them every e2e test fails with
the fix in its message (it does not skip). IVR_E2E_KEEP=1 keeps Asterisk's work dir for inspection.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from lab.asterisk import AsteriskInstance, ChrootMissing

HERE = Path(__file__).resolve().parent
_LOG_MARK = pytest.StashKey[int]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskInstance]:
    """A running Asterisk with asterisk-conf/ (ports rewritten). ``asterisk.agi_port`` is free: the
    FastAGI server under test binds it (the dialplan's IVR_AGI points there)."""
    try:
        instance = AsteriskInstance(keep=os.environ.get("IVR_E2E_KEEP") == "1")
    except (ChrootMissing, PermissionError) as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        instance.start()
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(f"Asterisk did not start: {exc}", pytrace=False)
    yield instance
    instance.stop()


@pytest.fixture(autouse=True)
def _asterisk_log_mark(request: pytest.FixtureRequest) -> None:
    """Remember where Asterisk's log stood when a test that uses ``asterisk`` began."""
    if "asterisk" in request.fixturenames:
        instance: AsteriskInstance = request.getfixturevalue("asterisk")
        request.node.stash[_LOG_MARK] = instance.log_mark()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing e2e test's report gets the Asterisk log lines written during that test."""
    report: pytest.TestReport = yield
    instance = getattr(item, "funcargs", {}).get("asterisk")
    if report.failed and isinstance(instance, AsteriskInstance) and _LOG_MARK in item.stash:
        report.sections.append(("Asterisk log", instance.log_text(since=item.stash[_LOG_MARK])))
    return report
