"""Property tests: every Graph error maps to a safe ledger transition (never a blind resend)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.execute.outcomes import MM_STATE_BY_CODE, decide
from migrator.graph import ErrorClass, NetworkError, error_from_envelope
from migrator.preflight.guidance import SETUP_STOPS
from _hyp import examples

WARMUP = frozenset({2300003, 2300012, 2300041, 2300028})
codes = st.one_of(st.integers(2300000, 2300080), st.sampled_from([1, 2, 4, 10, 17, 100, 190, 368, 551, 613, 80004]))


@settings(max_examples=examples(300), deadline=None)
@given(code=codes, sub=st.one_of(st.none(), st.sampled_from([33, 1893015, 2018108, 2300035])),
       remaining=st.one_of(st.none(), st.integers(1, 7200)), attempts=st.integers(1, 12),
       age=st.floats(0, 20000), text=st.sampled_from(["", "daily budget reached", "invalid URL"]))
def test_every_error_gets_a_safe_transition(code, sub, remaining, attempts, age, text):
    body = {"error": {"code": code, "error_subcode": sub, "message": text,
                      **({"error_data": {"remaining_seconds": remaining}} if remaining else {})}}
    err = error_from_envelope(body)
    v = decide(err, attempts=attempts, warmup_codes=WARMUP, campaign_age=age, warmup_limit=10800)
    assert v.state in ("planned", "unknown", "failed", "skipped")
    if v.state == "planned" and v.kind not in ("warmup", "fatal", "pause_campaign", "stop_page"):
        assert v.wait and v.wait > 0                      # a retry always waits
    if remaining and v.kind == "retry":
        assert v.wait >= remaining                        # honours remaining_seconds
    if v.kind == "never":
        assert v.state == "failed" and v.mm_state in set(MM_STATE_BY_CODE.values()) | {"invalid"}
    if v.kind == "suspect":     # 2300004/2300005 never mark a token on their own (breaker.py)
        assert v.state == "failed" and v.mm_state is None
    if err.error_class is ErrorClass.ACCOUNT_FATAL:
        assert v.kind in ("fatal", "warmup", "stop_page")
    if v.kind == "stop_page":                             # a page's set-up: never the subscriber's fault
        assert v.state == "planned" and v.mm_state is None and err.mm_code in SETUP_STOPS


@given(kind=st.sampled_from(["connect", "timeout", "reset", "http_5xx", "http_429", "http_4xx", "bad_response"]),
       attempts=st.integers(1, 12))
def test_a_network_failure_is_resent_only_when_the_request_never_left(kind, attempts):
    err = NetworkError("boom", kind=kind)
    v = decide(err, attempts=attempts, warmup_codes=WARMUP, campaign_age=0, warmup_limit=10800)
    if err.ambiguous:
        assert v.state == "unknown"
    else:
        assert v.state in ("planned", "failed")
