"""Valid files the fuzzer mutates: a flow using most node types, a schedules file, and the demo line's
own flows when run from a checkout."""

from __future__ import annotations

from pathlib import Path

FLOW = """\
# a flow that loads cleanly
flow: seed
description: every kind of node the loader checks
start: hello
fallback: sorry
nodes:
  hello:
    type: say
    note: &defaults {retries: 2, timeout: 4}
    prompt: [welcome, {text: {en: "Hello {customer_name}", it: "Ciao {customer_name}"}}]
    next: lang
  lang: {type: language, language: en, next: main}
  main:
    type: menu
    prompt: main-menu
    options: {"1": pin, "2": check, "0": agent, "#": bye}
    say: {"1": [balance, "my balance"], "0": [agent]}
    <<: *defaults
    next: {invalid: agent, timeout: agent}
  pin:
    type: gather
    prompt: {text: "Enter your PIN"}
    var: order
    min_digits: 4
    max_digits: 6
    pattern: "^[0-9]+$"
    next: {next: remember, invalid: agent, timeout: agent}
  remember:
    type: set
    vars: {reason: "order {order}", who: "{customer_name}"}
    next: check
  check:
    type: branch
    cases:
      - {if: 'balance > -5 and tier == "vip"', goto: vip}
      - {if: 'language in ("it", "es") or not customer_id', goto: agent}
      - {if: "0 < balance <= 100", goto: amount}
    else: agent
  amount: {type: say_data, kind: amount, value: "{balance}", currency: EUR, next: open}
  open:
    type: hours
    schedule: office
    next: {open: agent, closed: message, holiday: message}
  message: {type: voicemail, reason: "{hours_state}", next: bye}
  vip:
    type: queue
    queue: vip
    priority: 10
    announce_every: 45
    vars: {reason: "{reason}"}
    next: {timeout: agent, callback: later, continue: bye}
  later: {type: callback, kind: slot, timezone: Europe/Rome, next: {next: bye, declined: agent}}
  agent: {type: queue, queue: support, next: {voicemail: message}}
  sorry: {type: say, prompt: apology, next: agent}
  bye: {type: hangup}
"""

SUB = """\
flow: sub
start: ask
nodes:
  ask: {type: subflow, flow: seed, next: done}
  done: {type: return}
"""

SCHEDULE = """\
schedules:
  office:
    timezone: Europe/Rome
    weekly:
      mon-fri: "08:00-20:00"
      sat: ["09:00-13:00", "14:00-16:00"]
      sun: closed
    holidays: {country: IT, subdiv: RM, language: it}
    exceptions:
      - {date: 2027-04-30, closed: true, reason: Company day}
      - {date: 2027-03-19, hours: ["08:00-12:00"], reason: Staff training}
    recurring:
      - {date: 12-24, hours: ["08:00-13:00"], reason: Christmas Eve}
  night:
    timezone: America/New_York
    weekly: {daily: "00:00-24:00", fri-mon: ["20:00-23:59"]}
    holidays: US
"""

_DEMO = Path(__file__).resolve().parents[2] / "dialplans"


def _demo(names: tuple[str, ...]) -> list[str]:
    return [(_DEMO / n).read_text(encoding="utf-8") for n in names if (_DEMO / n).is_file()]


FLOWS = [FLOW, SUB, *_demo(("main.yaml", "ops.yaml", "callback.yaml"))]
SCHEDULES = [SCHEDULE, *_demo(("schedules.yaml",))]
