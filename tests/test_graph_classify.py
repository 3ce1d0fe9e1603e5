"""The error table: every code of mm-api.md §5 is classed, text decides 2300069-79, CLI prints it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.graph import ErrorClass, classify, classify_network, error_from_envelope, table_rows
from migrator.graph.errors import (AccountFatal, FixPayload, NetworkError, RecipientLater, RecipientNever,
                                   RetryLater, StopCampaign)

# Every MM code listed in mm-api.md §5.3 and the Graph/Messenger codes of §5.4.
MM_CODES = [2300000, 2300001, 2300002, 2300003, 2300004, 2300005, 2300006, 2300007, 2300008, 2300009,
            2300010, 2300011, 2300012, 2300013, 2300014, 2300015, 2300016, 2300017, 2300018, 2300019,
            2300020, 2300021, 2300022, 2300023, 2300024, 2300025, 2300026, 2300027, 2300028, 2300030,
            2300031, 2300032, 2300033, 2300034, 2300035, 2300036, 2300037, 2300038, 2300039, 2300040,
            2300041, 2300042, 2300043, 2300044, 2300046, 2300047, 2300048, 2300052, 2300053, 2300054,
            2300055, 2300056, 2300057, 2300058, 2300059, 2300060, 2300061, 2300062, 2300063, 2300064,
            2300065, 2300066, 2300067, 2300068, 2300069, 2300070, 2300071, 2300072, 2300073, 2300074,
            2300075, 2300076, 2300077, 2300078, 2300079, 2300080, 1893047]
GRAPH_CODES = [(1, None), (2, None), (3, None), (4, None), (4, 2018354), (4, 1504022), (4, 1504039),
               (9, 2018352), (10, None), (10, 1404170), (10, 1893015), (10, 1893063), (10, 2018108),
               (17, None), (17, 2446079), (32, None), (100, None), (100, 33), (102, None), (190, None),
               (190, 463), (200, None), (250, None), (200, 1545041), (341, None), (368, None), (551, None),
               (551, 1545041), (613, None), (613, 1487742), (613, 5044001), (613, 1487632), (613, 1487225),
               (613, 1893016), (613, 2534040), (2022, None), (80000, None), (80001, None), (80003, None),
               (80004, None), (80005, None), (80006, None), (80007, None), (80008, None), (80009, None),
               (80014, None)]


@pytest.mark.parametrize("code", MM_CODES)
def test_every_mm_code_is_in_the_table(code):
    c = classify(code)
    assert c.matched == str(code), f"{code} fell through to {c.matched}"
    assert isinstance(c.error_class, ErrorClass)


@pytest.mark.parametrize("code,subcode", GRAPH_CODES)
def test_every_graph_code_is_in_the_table(code, subcode):
    c = classify(code, subcode)
    assert not c.matched.startswith("fallback"), (code, subcode)


@pytest.mark.parametrize("code,cls,wait", [
    (2300012, ErrorClass.RETRY_LATER, 600), (2300041, ErrorClass.RETRY_LATER, 600),
    (2300035, ErrorClass.RECIPIENT_LATER, 43200), (2300034, ErrorClass.RECIPIENT_NEVER, None),
    (2300032, ErrorClass.RECIPIENT_NEVER, None), (2300053, ErrorClass.STOP_CAMPAIGN, None),
    (2300054, ErrorClass.STOP_CAMPAIGN, 86400), (2300026, ErrorClass.FIX_PAYLOAD, None),
    (2300011, ErrorClass.ACCOUNT_FATAL, None), (2300080, ErrorClass.RETRY_LATER, 60),
    (190, ErrorClass.ACCOUNT_FATAL, None), (80004, ErrorClass.RETRY_LATER, 60),
])
def test_representative_classes_and_waits(code, cls, wait):
    c = classify(code)
    assert c.error_class is cls
    assert c.wait_seconds == wait


def test_warmup_codes_are_flagged():
    assert {c for c in MM_CODES if classify(c).warmup} == {2300000, 2300003, 2300012, 2300028, 2300041}


def test_mm_code_found_in_error_subcode():
    c = classify(100, 2300035, "Invalid parameter")
    assert c.error_class is ErrorClass.RECIPIENT_LATER and c.matched == "2300035"
    c = classify(10, 2300034)
    assert c.error_class is ErrorClass.RECIPIENT_NEVER


@pytest.mark.parametrize("code,ref_text,ref_cls,cl_text,cl_cls", [
    (2300069, "Required terms of service not signed", "account_fatal", "Lifetime budget reached", "stop_campaign"),
    (2300070, "Invalid targeting", "fix_payload", "Daily budget reached", "stop_campaign"),
    (2300071, "Invalid aliases", "fix_payload", "Pacing limit reached", "retry_later"),
    (2300072, "Invalid offer", "fix_payload", "Account spend cap reached", "account_fatal"),
    (2300073, "Too many line breaks", "fix_payload", "Account daily spending limit reached", "account_fatal"),
    (2300074, "Missing required CTA button", "fix_payload", "Prepay balance depleted", "account_fatal"),
    (2300075, "Invalid button order", "fix_payload", "Business stored balance depleted", "account_fatal"),
    (2300076, "Required field missing", "fix_payload", "Daily spending limit reached", "account_fatal"),
    (2300077, "Invalid URL", "fix_payload", "Flex billing limit reached", "account_fatal"),
    (2300078, "Send rate limit exceeded", "retry_later", "Brand extended credit limit reached", "account_fatal"),
    (2300079, "Campaign creation rate limit", "retry_later", "Daily spending limit reached", "account_fatal"),
])
def test_conflicting_range_is_classified_by_text(code, ref_text, ref_cls, cl_text, cl_cls):
    a, b = classify(code, None, ref_text), classify(code, None, cl_text)
    assert (a.error_class.value, a.reading) == (ref_cls, "REF")
    assert (b.error_class.value, b.reading) == (cl_cls, "CL")
    assert classify(code, None, "something else entirely").reading == "REF"  # the default reading


def test_code_100_about_the_token_is_a_dead_recipient():
    assert classify(100, None, "(#100) notification_messages_token is invalid").error_class \
        is ErrorClass.RECIPIENT_NEVER
    assert classify(100, None, "(#100) Invalid parameter").error_class is ErrorClass.FIX_PAYLOAD


def test_remaining_seconds_raises_the_wait():
    assert classify(2300068, remaining_seconds=900).wait_seconds == 900
    assert classify(2300035, remaining_seconds=10).wait_seconds == 43200  # never shorter than the table


def test_unknown_codes_fall_back_by_is_transient():
    assert classify(987654, is_transient=True).error_class is ErrorClass.RETRY_LATER
    assert classify(987654).error_class is ErrorClass.STOP_CAMPAIGN


def test_network_kinds():
    assert classify_network("timeout").ambiguous and classify_network("reset").ambiguous
    assert not classify_network("connect").ambiguous
    assert classify_network("http_4xx").error_class is ErrorClass.FIX_PAYLOAD


@pytest.mark.parametrize("code,exc", [(2300012, RetryLater), (2300035, RecipientLater),
                                      (2300034, RecipientNever), (2300053, StopCampaign),
                                      (2300026, FixPayload), (2300011, AccountFatal)])
def test_envelope_builds_the_exception_of_its_class(code, exc):
    body = {"error": {"message": "m", "type": "OAuthException", "code": code,
                      "error_data": {"remaining_seconds": 5}, "is_transient": False, "fbtrace_id": "Ab1"}}
    err = error_from_envelope(body, http_status=400)
    assert type(err) is exc
    assert (err.code, err.fbtrace_id, err.remaining_seconds, err.http_status) == (code, "Ab1", 5.0, 400)
    assert err.mm_code == code


def test_envelope_error_data_as_json_string_and_scrubbing():
    body = {"error": {"message": "bad token SECRET123", "code": "2300055", "error_subcode": "",
                      "error_data": '{"remaining_seconds": 120}'}}
    err = error_from_envelope(body, scrub=("SECRET123",))
    assert "SECRET123" not in str(err) and err.remaining_seconds == 120 and err.wait_seconds == 1800


def test_not_an_envelope():
    assert error_from_envelope({"data": []}) is None
    assert error_from_envelope("x") is None
    assert isinstance(NetworkError("x", kind="timeout"), RetryLater)


@given(code=st.one_of(st.none(), st.integers(-10, 10**9)), sub=st.one_of(st.none(), st.integers(-10, 10**9)),
       msg=st.text(max_size=50), rem=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
def test_classify_never_crashes(code, sub, msg, rem):
    c = classify(code, sub, msg, remaining_seconds=rem)
    assert c.error_class in ErrorClass


@given(st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=5)),
                    lambda ch: st.one_of(st.lists(ch, max_size=3), st.dictionaries(st.text(max_size=12), ch, max_size=4)),
                    max_leaves=10))
def test_envelope_parser_never_crashes(body):
    err = error_from_envelope({"error": body} if isinstance(body, dict) else body)
    assert err is None or err.classification.error_class in ErrorClass


def test_table_rows_cover_every_class_and_cli_prints_them(cli):
    rows = table_rows()
    assert {r["class"] for r in rows} == {c.value for c in ErrorClass}
    assert all(r["source"] and r["meaning"] for r in rows)
    res = cli("graph", "errors", "--json")
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert data["count"] == len(rows) and any(r["code"] == "2300078" and r["reading"] for r in data["codes"])
    res = cli("graph", "errors", "--class", "recipient_later")
    assert "2300035" in res.output and "2300034" not in res.output
    res = cli("graph", "errors", "--code", "2300078", "--message", "brand extended credit limit", "--json")
    assert json.loads(res.output)["class"] == "account_fatal"


# --- issue 16.4: the documented pair decides ------------------------------------------------

@pytest.mark.parametrize("code", [10, 100])
def test_1893047_as_a_subcode_is_the_recipient_not_the_run_or_the_payload(code):
    c = classify(code, 1893047, "(#10) This person isn't available right now.")
    assert c.error_class is ErrorClass.RECIPIENT_LATER and c.wait_seconds == 86400
    assert c.matched == f"{code}/1893047"
    assert classify(1893047).error_class is ErrorClass.RECIPIENT_LATER
    # a generic 10 or 100 without it keeps the parent's class
    assert classify(10).error_class is ErrorClass.ACCOUNT_FATAL
    assert classify(100, 33).error_class is ErrorClass.FIX_PAYLOAD


def test_2300038_is_per_recipient_unless_the_text_says_the_placeholder_is_unknown():
    per_recipient = classify(2300038, None, "A placeholder in the message could not be resolved.")
    assert per_recipient.error_class is ErrorClass.RECIPIENT_LATER and per_recipient.reading == "recipient"
    unknown = classify(2300038, None, "Unknown macro {{nickname}} in the message.")
    assert unknown.error_class is ErrorClass.FIX_PAYLOAD


def test_2300018_gets_exactly_one_retry():
    from migrator.execute.outcomes import decide
    err = error_from_envelope({"error": {"code": 2300018, "message": "The attachment could not be saved."}})
    assert err.error_class is ErrorClass.RETRY_LATER and err.classification.max_attempts == 2
    first = decide(err, attempts=1, warmup_codes=frozenset(), campaign_age=1e9, warmup_limit=0)
    second = decide(err, attempts=2, warmup_codes=frozenset(), campaign_age=1e9, warmup_limit=0)
    assert first.kind == "retry" and (second.kind, second.reason) == ("failed", "retries_exhausted")
