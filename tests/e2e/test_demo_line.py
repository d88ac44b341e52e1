"""The demo line itself (dialplans/main.yaml with its schedules.yaml and queues.yaml, unchanged) at the
worst moments, on real Asterisk with SIPp callers: after hours the caller hears when the office opens
again and leaves a message; with nobody logged in to the queue the caller gets a callback that keeps
their place instead of an endless wait.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lab import AsteriskInstance, Dtmf, Hangup, Pause, Speak, WaitHangup, espeak_wav, run_call
from tests.appkit import ALWAYS_OPEN, project_copy
from tests.e2e.servicekit import running_service, said, visited
from tests.e2e.test_voicemail_ops import dirs, telephone_wav

ROME = ZoneInfo("Europe/Rome")
STRANGER = "+12025550177"  # a valid number that is no customer's


async def test_after_hours_the_caller_hears_the_next_opening_and_leaves_a_message(
        asterisk: AsteriskInstance, tmp_path: Path) -> None:
    project_copy(tmp_path)  # the demo as shipped: office hours Mon-Fri 08-20 in Rome
    vm_host, vm_asterisk = dirs(asterisk, f"voicemail-{tmp_path.name}")
    # long enough to outlast the closed prompts and the message intro: the tail of it is the message
    voice = espeak_wav("Buonasera, sono un cliente e vorrei essere richiamato domani mattina. " * 4,
                       tmp_path / "message.wav", voice="it")
    async with running_service(asterisk, tmp_path, voicemail_dir=vm_host, voicemail_asterisk_dir=vm_asterisk) as svc:
        svc.app.services.clock = lambda: datetime(2026, 12, 2, 22, 30, tzinfo=ROME)  # a Wednesday night
        steps = [Pause(1500), Dtmf("2"), Speak(voice), Hangup()]
        result = await run_call(asterisk.sip_port, steps, caller_id=STRANGER, time_limit=90)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
        store = svc.app.services.voicemail
        assert store is not None
    assert visited(journey)[:5] == ["identify", "choose_language", "italiano", "hours", "closed"]
    assert "after_hours_message" in visited(journey) and journey["language"] == "it"
    assert said(journey)[1:3] == ["hours-closed", "hours-next-open"]
    [hours] = [e for e in journey["journey"] if e["kind"] == "hours"]
    assert hours["state"] == "closed"
    [event] = [e for e in journey["journey"] if e["kind"] == "voicemail"]
    assert event["saved"] is True
    meta = store.get(event["id"])
    assert (meta["caller"], meta["language"], meta["reason"]) == (STRANGER, "it", "closed")
    assert telephone_wav(Path(meta["file"])) == (8000, 1, 2) and meta["seconds"] > 1.0


async def test_nobody_at_the_queue_offers_a_callback_that_is_stored(
        asterisk: AsteriskInstance, tmp_path: Path, redis_url: str) -> None:
    flows, _ = project_copy(tmp_path)  # queues.yaml as shipped: support has no agent logged in → callback
    (flows / "schedules.yaml").write_text(ALWAYS_OPEN)
    async with running_service(asterisk, tmp_path, redis_url=redis_url) as svc:
        queues, callbacks = svc.app.services.queues, svc.app.services.callbacks
        assert queues is not None and callbacks is not None
        await svc.wait_for("queue state", lambda: "support" in queues.queues)
        # English, then 0 for an agent; the callback menu: 1 = call me back on this number
        steps = [Pause(1500), Dtmf("1"), Pause(2500), Dtmf("0"), Pause(4000), Dtmf("1"), WaitHangup(40_000)]
        result = await run_call(asterisk.sip_port, steps, caller_id=STRANGER, time_limit=90)
        assert result.ok, result.describe()
        [journey] = await svc.journey_count(1)
        callback = await callbacks.for_number(STRANGER)
    assert visited(journey)[-3:] == ["support", "offer_callback", "bye"], visited(journey)
    [event] = [e for e in journey["journey"] if e["kind"] == "callback"]
    assert event["result"] == "stored", event
    assert callback is not None and callback.queue == "support" and callback.kind == "keep_place"
    assert not svc.named("QueueCallerJoin")  # nobody was left waiting for no one
