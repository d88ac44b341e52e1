"""Sans-IO AGI: quoting, reply parsing, the HANGUP line and 520 usage blocks."""

from __future__ import annotations

import pytest

from ivr.agi.protocol import ReplyParser, format_command, parse_200, parse_env, quote
from ivr.errors import AgiError


def test_quote_escapes_and_refuses_line_breaks() -> None:
    assert quote('say "hi" \\ there') == '"say \\"hi\\" \\\\ there"'
    for bad in ("a\nHANGUP", "a\rb", "a\x00"):
        with pytest.raises(AgiError):
            quote(bad)
    with pytest.raises(AgiError):
        quote("x" * 5000)


def test_format_command_numbers_bare_strings_quoted() -> None:
    assert format_command("WAIT FOR DIGIT", 5000) == "WAIT FOR DIGIT 5000"
    assert format_command("STREAM FILE", "/p/a", "12#") == 'STREAM FILE "/p/a" "12#"'
    with pytest.raises(AgiError):
        format_command("STREAM FILE\nHANGUP")


@pytest.mark.parametrize(
    ("line", "result", "data", "extras"),
    [
        ("200 result=0", "0", None, {}),
        ("200 result=49 endpos=12000", "49", None, {"endpos": "12000"}),
        ("200 result=1 (some value with spaces)", "1", "some value with spaces", {}),
        ("200 result=123 (timeout)", "123", "timeout", {}),
        ("200 result=1 (a (nested) value)", "1", "a (nested) value", {}),
        ("200 result=0 (timeout) endpos=4000", "0", "timeout", {"endpos": "4000"}),
        ("200 result=", "", None, {}),
    ],
)
def test_parse_200(line: str, result: str, data: str | None, extras: dict[str, str]) -> None:
    r = parse_200(line)
    assert (r.result, r.data, r.extras) == (result, data, extras)


@pytest.mark.parametrize("line", ["200 ok", "200 result=1 (unterminated", "200 result=1 garbage here"])
def test_parse_200_rejects_garbage(line: str) -> None:
    with pytest.raises(AgiError):
        parse_200(line)


def test_reply_parser_hangup_and_multiline_520() -> None:
    p = ReplyParser()
    assert p.feed("HANGUP") is None and p.hangup_seen
    assert p.feed("520-Invalid command syntax.  Proper usage follows:") is None
    assert p.feed(" Usage: STREAM FILE <filename> <escape digits>") is None
    r = p.feed("520 End of proper usage.")
    assert r is not None and r.code == 520 and "Usage: STREAM FILE" in r.text
    r = p.feed("510 Invalid or unknown command")
    assert r is not None and r.code == 510
    r = p.feed("511 Command Not Permitted on a dead channel or intercepted")
    assert r is not None and r.code == 511
    with pytest.raises(AgiError):
        p.feed("hello there")


def test_env_block() -> None:
    env = parse_env(["agi_network: yes", "agi_uniqueid: 1700000000.1", "agi_callerid: +12025550101",
                     "agi_arg_1: "])
    assert env["uniqueid"] == "1700000000.1" and env["callerid"] == "+12025550101" and env["arg_1"] == ""
    with pytest.raises(AgiError):
        parse_env(["GET / HTTP/1.1"])


def test_encoded_line_is_bounded_in_bytes_after_escaping() -> None:
    from ivr.agi.protocol import MAX_COMMAND_BYTES, encode_command

    head = len('SET VARIABLE "X" ""')
    line = encode_command("SET VARIABLE", "X", "x" * (MAX_COMMAND_BYTES - head))
    assert len(line) == MAX_COMMAND_BYTES + 1 and line.endswith(b'x"\n')
    for too_long in ("x" * (MAX_COMMAND_BYTES - head + 1),      # one byte over
                     "\\" * ((MAX_COMMAND_BYTES - head) // 2 + 1),  # escaping doubles it
                     "€" * ((MAX_COMMAND_BYTES - head) // 3 + 1)):  # 3 bytes of UTF-8 each
        with pytest.raises(AgiError, match="bytes encoded"):
            encode_command("SET VARIABLE", "X", too_long)
    with pytest.raises(AgiError, match="not valid Unicode"):
        encode_command("SET VARIABLE", "X", "\ud800")


def test_more_words_than_asterisk_parses_are_refused() -> None:
    from ivr.agi.protocol import MAX_WORDS, encode_command

    encode_command("EXEC", *(["a"] * (MAX_WORDS - 1)))
    with pytest.raises(AgiError, match="words"):
        encode_command("EXEC", *(["a"] * MAX_WORDS))


def test_reply_timeouts_by_command_kind() -> None:
    from ivr.agi.timeouts import ReplyTimeouts

    t = ReplyTimeouts(short=10, prompt=600, long=14400)
    assert t.for_command("SET VARIABLE", ("A", "b")) == 10
    assert t.for_command("ANSWER") == 10
    assert t.for_command("STREAM FILE", ("/p/a", "12")) == 600
    assert t.for_command("SAY DIGITS", ("123", "")) == 600
    assert t.for_command("WAIT FOR DIGIT", (5000,)) == 15
    assert t.for_command("WAIT FOR DIGIT", (-1,)) == 14400
    assert t.for_command("RECORD FILE", ("/r/a", "wav", "#", 60000, "BEEP", "s=3")) == 70
    assert t.for_command("RECORD FILE", ("/r/a", "wav", "#", -1)) == 14400
    assert t.for_command("GET DATA", ("/p/pin", 5000, 4)) == 600 + 15 * 4
    assert t.for_command("GET OPTION", ("/p/m", "12", 3000)) == 600 + 13
    for app in ("Queue", "Dial", "Record", "VoiceMail", "AudioSocket", "SomethingNew"):
        assert t.for_command("EXEC", (app, "x")) == 14400, app
    assert t.for_command("EXEC", ("Playback", "x")) == 600
    assert t.for_command("EXEC", ("Set", "A=1")) == 10


def test_a_malformed_reply_is_reported_without_its_digits() -> None:
    for line in ("200 result=4512 garbage!", "200 result=4512 (unterminated", "4512 what"):
        with pytest.raises(AgiError) as err:
            ReplyParser().feed(line)
        assert "4512" not in str(err.value) and "####" in str(err.value)
