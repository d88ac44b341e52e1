"""The engine and the issue-2 nodes, on a scripted FakeChannel."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.errors import BackendTimeout
from ivr.flows.node import Node, node_type
from tests.flowkit import prompts, run, visited

MENU = """
flow: t
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options: {"1": one, "2": two}
    retries: 3
    next: {invalid: human, timeout: human}
  one: {type: queue, queue: billing}
  two: {type: hangup}
  human: {type: queue, queue: support}
"""


async def test_key_reaches_its_queue_and_agent_gets_context() -> None:
    call, ch = await run(MENU, "1")
    assert visited(call) == ["menu", "one"]
    assert ch.apps == [("Queue", ("billing", "", "", "", ""))]
    assert call.outcome == "queue:billing"
    assert ch.vars["__IVR_PATH"] == "menu:1" and ch.vars["__IVR_LANGUAGE"] == "en"
    assert ch.vars["IVR_STATUS"] == "done" and ch.hung_up


async def test_invalid_then_timeouts_then_fallback_edge() -> None:
    call, ch = await run(MENU, "9 t t")
    inputs = [e.detail.get("via") for e in call.journey if e.kind == "input"]
    assert inputs == ["dtmf", "timeout", "timeout"]
    assert prompts(ch) == ["main-menu", "invalid", "main-menu", "no-input", "main-menu", "transfer-agent"]
    assert visited(call)[-1] == "human" and call.outcome == "queue:support"


async def test_barge_in_key_interrupts_prompt() -> None:
    call, ch = await run(MENU, "2")
    assert prompts(ch) == ["main-menu", "goodbye"]
    assert call.outcome == "hangup" and ch.hung_up


async def test_hangup_mid_prompt_ends_call_cleanly() -> None:
    call, ch = await run(MENU, "h")
    assert call.outcome == "caller-hangup"
    assert ch.apps == [] and "IVR_STATUS" not in ch.vars


@node_type("test_flaky")
@dataclass(frozen=True)
class Flaky(Node):
    """Raises a backend timeout (registered for tests only)."""

    async def run(self, ctx):  # type: ignore[no-untyped-def]
        raise BackendTimeout("slow backend")


FAILING = """
flow: f
start: look
fallback: sorry
nodes:
  look: {type: test_flaky, next: done}
  done: {type: hangup}
  sorry: {type: say, prompt: apology, next: human}
  human: {type: queue, queue: support}
"""


async def test_failing_node_apologises_and_reaches_a_human() -> None:
    call, ch = await run(FAILING)
    assert visited(call) == ["look", "sorry", "human"]
    assert [e.detail["error"] for e in call.journey if e.kind == "error"] == ["BackendTimeout"]
    assert prompts(ch)[0] == "apology" and call.outcome == "queue:support"


async def test_failure_without_any_fallback_uses_builtin_handoff() -> None:
    flow = """
    flow: g
    start: look
    nodes:
      look: {type: test_flaky, next: done}
      done: {type: hangup}
    """
    call, ch = await run(flow)
    assert prompts(ch) == ["apology"]
    assert ch.apps == [("Queue", ("support",))] and call.outcome == "queue:support"


async def test_unknown_flow_is_handed_to_a_human() -> None:
    call, ch = await run(MENU, flow="nope")
    assert call.outcome == "queue:support" and prompts(ch) == ["apology"]


GATHER = """
flow: g
start: ask
nodes:
  ask:
    type: gather
    prompt: enter-account
    var: account
    min_digits: 4
    max_digits: 8
    next: {next: done, invalid: human, timeout: human}
  done: {type: say_data, kind: digits, value: "{account}", next: bye}
  bye: {type: hangup}
  human: {type: queue, queue: support}
"""


async def test_gather_with_terminator_and_read_back() -> None:
    call, ch = await run(GATHER, "1 2 3 4 5 #")
    assert call.vars["account"] == "12345"
    assert ch.said == [("digits", "12345")]


async def test_gather_too_short_reprompts_then_invalid_edge() -> None:
    call, ch = await run(GATHER, "1 # 1 # 1 #")
    assert prompts(ch).count("invalid") == 2 and call.outcome == "queue:support"


async def test_secure_gather_never_records_digits() -> None:
    flow = GATHER.replace("var: account", "var: pin\n    secure: true").replace('"{account}"', '"1"')
    call, ch = await run(flow, "4 7 1 1 #")
    assert call.secure["pin"].reveal() == "4711" and "pin" not in call.vars
    text = repr(call.summary())
    assert "4711" not in text and "'length': 4" in text


async def test_luhn_validation() -> None:
    flow = GATHER.replace("max_digits: 8", "max_digits: 19\n    luhn: true")
    call, _ = await run(flow, "4 5 3 9 1 4 8 8 0 3 4 3 6 4 6 7 #")
    assert call.vars["account"] == "4539148803436467"
    call, _ = await run(flow, "1 2 3 4 # 1 2 3 4 # 1 2 3 4 #")
    assert "account" not in call.vars


async def test_typeahead_skips_greeting_and_answers_menu() -> None:
    flow = """
    flow: ta
    start: hi
    nodes:
      hi: {type: say, prompt: welcome, barge_in: true, next: menu}
      menu:
        type: menu
        prompt: main-menu
        options: {"1": q}
        next: {invalid: q, timeout: q}
      q: {type: queue, queue: billing}
    """
    call, ch = await run(flow, "1")
    assert prompts(ch) == ["welcome", "transfer-agent"]
    assert call.path == ["menu:1"]


async def test_branch_language_and_subflow() -> None:
    main = """
    flow: main
    start: lang
    nodes:
      lang: {type: language, language: it, next: sub}
      sub: {type: subflow, flow: common, next: route}
      route:
        type: branch
        cases:
          - {if: 'language == "it" and tier != "vip"', goto: it}
        else: en
      it: {type: queue, queue: support-it}
      en: {type: queue, queue: support}
    """
    common = """
    flow: common
    start: hi
    nodes:
      hi: {type: set, vars: {reason: "lang-{language}"}, next: back}
      back: {type: return}
    """
    call, ch = await run([main, common], flow="main")
    assert call.vars["reason"] == "lang-it" and ch.vars["CHANNEL(language)"] == "it"
    assert call.outcome == "queue:support-it"


async def test_amount_is_spoken_with_currency_words() -> None:
    flow = """
    flow: a
    start: s
    nodes:
      s: {type: set, vars: {balance: "12.50"}, next: say}
      say: {type: say_data, kind: amount, value: "{balance}", currency: EUR, next: bye}
      bye: {type: hangup, prompt: null}
    """
    _, ch = await run(flow)
    assert ch.said == [("number", "12"), ("number", "50")]
    assert prompts(ch) == ["currency-euros", "and", "currency-cents"]


async def test_queue_timeout_follows_edge() -> None:
    flow = """
    flow: q
    start: q1
    nodes:
      q1: {type: queue, queue: billing, timeout: 30, next: {timeout: q2}}
      q2: {type: queue, queue: support}
    """
    from ivr.testing import FakeChannel

    ch = FakeChannel.scripted("")
    ch.queue_status = "TIMEOUT"
    call, _ = await run(flow, channel=ch)
    assert [a[1][0] for a in ch.apps][:2] == ["billing", "support"]
    assert ch.apps[0][1][4] == "30"


def test_the_name_prompts_may_say_follows_identify_greet_until_verified() -> None:
    from ivr.call import Call

    call = Call("u", "main", customer_name="Alice Morgan", auth_level="identified")
    said = {}
    for greet in ("full", "first", "none"):
        call.greet = greet
        said[greet] = call.variables()["customer_name"]
    assert said == {"full": "Alice Morgan", "first": "Alice", "none": ""}
    call.auth_level = "verified"
    assert call.variables()["customer_name"] == "Alice Morgan"
