"""Per-event signals: what each one flags, and what it leaves alone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import encode, model_call, tool_call
from hypothesis import given
from hypothesis import strategies as st

from monitor.events import decode_record
from monitor.signals.agent_loop import SessionTracker, _call_digest
from monitor.signals.audit_gap import audit_gap_signal
from monitor.signals.error_rate import error_signal
from monitor.signals.hallucination import context_support, hallucination_signal
from monitor.signals.kill_switch import KillSwitchState
from monitor.signals.latency import latency_signal
from monitor.signals.tool_failure import tool_failure_signal
from monitor.signals.tool_scope import Boundaries, BoundariesError, load_boundaries, tool_scope_signal

HALLUCINATION = {"min_mean_logprob": -1.5, "min_context_support": 0.35, "flag_truncation": True}


def test_hallucination_low_confidence():
    result = hallucination_signal(mean_logprob=-2.2, output_text=None, context=None, finish_reason=None, **HALLUCINATION)
    assert result == {"mean_logprob": -2.2, "low_confidence": True, "score": pytest.approx(0.7333, abs=1e-4), "flag": True}


def test_hallucination_unsupported_by_context():
    context = ["The refund window for standard orders is 30 days from delivery."]
    grounded = hallucination_signal(mean_logprob=None, output_text="Refunds are possible within 30 days of delivery.", context=context, finish_reason=None, **HALLUCINATION)
    invented = hallucination_signal(mean_logprob=None, output_text="Zephyr Dynamics acquired Orbitron in 2011 for 4.7 billion crowns.", context=context, finish_reason=None, **HALLUCINATION)
    assert grounded["flag"] is False and grounded["context_support"] >= 0.5
    assert invented["flag"] is True and invented["context_support"] == 0.0


def test_hallucination_truncation_and_absence_of_inputs():
    assert hallucination_signal(mean_logprob=None, output_text="x", context=None, finish_reason="length", **HALLUCINATION)["flag"] is True
    assert hallucination_signal(mean_logprob=None, output_text="x", context=None, finish_reason="stop", **HALLUCINATION)["flag"] is False
    assert hallucination_signal(mean_logprob=None, output_text="x", context=None, finish_reason=None, **HALLUCINATION) is None


def test_context_support_counts_numbers_and_ignores_short_words():
    # "costs" and "dollars" are supported; the invented "30" is not; "It" does not count
    assert context_support("It costs 30 dollars", ["It costs 45 dollars"]) == 0.6667


def test_context_support_reads_non_ascii_text_as_it_reads_ascii():
    # ASCII text has its punctuation replaced another (faster) way than other text: both must agree.
    assert context_support("Délivery costs 30 dollars, (per order).", ["Délivery: 45 dollars per order!"]) == 0.6
    assert context_support("Delivery costs 30 dollars, (per order).", ["Delivery: 45 dollars per order!"]) == 0.6


def test_typographic_quotes_dashes_and_apostrophes_split_words_as_plain_ones_do():
    context = ['The museum\'s "Zurich" wing opened in 1912 - its founder sold it.']
    assert context_support("The museum\u2019s \u201cZurich\u201d wing opened in 1912\u2014its founder sold it\u2026", context) == 1.0
    assert context_support("Tickets cost \u00a325 each.", ["Tickets cost \u00a330 each."]) == 0.6667, "the invented 25 is a number the source lacks"


@pytest.mark.parametrize(
    ("status", "result", "expected"),
    [
        ("ok", {"items": 3}, {"flag": False, "failure": None}),
        ("error", None, {"flag": True, "failure": "error"}),
        ("timeout", None, {"flag": True, "failure": "timeout"}),
        ("ok", {"ok": False, "reason": "not_found"}, {"flag": True, "failure": "soft"}),
        ("ok", {"isError": True, "content": []}, {"flag": True, "failure": "soft"}),
        ("ok", {"error": {"code": 500}}, {"flag": True, "failure": "soft"}),
        ("ok", {"errors": ["quota"]}, {"flag": True, "failure": "soft"}),
        ("ok", {"status": "failed"}, {"flag": True, "failure": "soft"}),
        ("ok", {"ok": True, "error": None}, {"flag": False, "failure": None}),
        ("ok", "plain text result", {"flag": False, "failure": None}),
        ("blocked", None, None),
    ],
)
def test_tool_failure_including_soft_failures(status, result, expected):
    assert tool_failure_signal(status, result) == expected


def write_boundary(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def test_tool_scope_deny_wins_and_unlisted_tools_are_out_of_scope(tmp_path):
    write_boundary(tmp_path, "bot.yaml", "agent: bot\nallow: ['search_*', 'get_order']\ndeny: ['search_admin']\n")
    boundaries = load_boundaries(tmp_path)
    assert tool_scope_signal(boundaries, "bot", "search_kb", "ok") == {"flag": False, "verdict": "in_scope", "blocked": False}
    assert tool_scope_signal(boundaries, "bot", "search_admin", "ok") == {"flag": True, "verdict": "denied", "blocked": False}
    assert tool_scope_signal(boundaries, "bot", "refund_order", "ok") == {"flag": True, "verdict": "not_allowed", "blocked": False}
    assert tool_scope_signal(boundaries, "bot", "refund_order", "blocked") == {"flag": False, "verdict": "not_allowed", "blocked": True}
    assert tool_scope_signal(boundaries, "other-agent", "anything", "ok")["verdict"] == "no_boundary"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allow: [a]\n", "'agent' must be a non-empty string"),
        ("agent: bot\nallow: a\n", "'allow' must be a list"),
        ("agent: bot\nalow: [a]\n", "unknown field"),
        ("agent: bot\nmax_calls_per_session: 0\n", "max_calls_per_session"),
        ("agent: [unclosed\n", "cannot read the boundary"),
    ],
)
def test_invalid_boundary_files_fail_with_the_file_and_the_problem(tmp_path, text, message):
    write_boundary(tmp_path, "bad.yaml", text)
    with pytest.raises(BoundariesError, match=message) as error:
        load_boundaries(tmp_path)
    assert "bad.yaml" in str(error.value)


def test_two_boundaries_for_one_agent_is_an_error(tmp_path):
    write_boundary(tmp_path, "a.yaml", "agent: bot\nallow: [x]\n")
    write_boundary(tmp_path, "b.yml", "agent: bot\nallow: [y]\n")
    with pytest.raises(BoundariesError, match="already has a boundary"):
        load_boundaries(tmp_path)


def test_missing_boundary_directory_is_an_error(tmp_path):
    with pytest.raises(BoundariesError, match="not a directory"):
        load_boundaries(tmp_path / "nope")


def tracker(**overrides):
    settings = {"max_repeats": 3, "max_calls_per_session": 10, "session_idle_seconds": 60.0, "max_sessions": 100}
    settings.update(overrides)
    return SessionTracker(**settings)


def test_agent_loop_flags_a_repeated_call_once_per_session():
    loops = tracker()
    flags = [loops.observe("s1", "search", "same-args", float(t))["flag"] for t in range(8)]
    assert flags == [False, False, False, True, False, False, False, False]


@given(tool=st.text(st.characters(exclude_categories=())), args_hash=st.text(st.characters(exclude_categories=())))  # lone surrogates too
def test_a_calls_digest_is_blake2b_of_its_tool_and_arguments_as_snapshots_hold_it(tool, args_hash):
    data = f"{tool}\x00{args_hash}".encode("utf-8", "surrogatepass")
    assert _call_digest(tool, args_hash) == int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def test_agent_loop_flags_a_session_over_its_budget_and_honours_a_boundary_budget():
    loops = tracker()
    results = [loops.observe("s1", "search", f"args-{t}", float(t)) for t in range(12)]
    assert [r["reason"] for r in results if r["flag"]] == ["call_budget"]
    assert [r["calls"] for r in results if r["flag"]] == [11]
    assert [loops.observe("s2", "search", f"a{t}", float(t), budget=2)["flag"] for t in range(4)] == [False, False, True, False]


def test_agent_loop_memory_is_bounded_by_sessions_and_idle_time():
    loops = tracker(max_sessions=50, session_idle_seconds=10.0)
    for t in range(1000):
        loops.observe(f"s{t}", "search", "a", float(t) / 100)
    assert len(loops) == 50
    loops.observe("late", "search", "a", 10_000.0)
    assert len(loops) == 1


def test_kill_switch_grace_period_then_flag_and_resume():
    state = KillSwitchState(grace_seconds=60.0)
    assert state.call_after_halt("bot", None, 0.0) is None
    state.apply("kill_switch", "bot", None, 100.0)
    assert state.call_after_halt("bot", None, 130.0) == {"flag": False, "seconds_after_halt": 30.0}
    assert state.call_after_halt("bot", None, 161.0) == {"flag": True, "seconds_after_halt": 61.0}
    state.apply("resume", "bot", None, 170.0)
    assert state.call_after_halt("bot", None, 171.0) is None


def test_audit_gap_names_the_missing_fields():
    (complete,), _ = decode_record(encode(model_call(0)))
    (partial,), _ = decode_record(encode(model_call(0, caller=None, input_hash="")))
    (tool,), _ = decode_record(encode(tool_call(0, args_hash=None, event_id=None)))
    assert audit_gap_signal(complete) == {"flag": False, "missing": []}
    assert audit_gap_signal(partial) == {"flag": True, "missing": ["caller", "input_hash"]}
    assert audit_gap_signal(tool) == {"flag": True, "missing": ["event_id", "args_hash"]}


def test_error_signal_classes_are_bounded():
    assert error_signal(None) == {"flag": False, "error_class": None}
    assert error_signal("HTTP 503 Service Unavailable") == {"flag": True, "error_class": "server_error"}
    assert error_signal("rate_limit_exceeded")["error_class"] == "rate_limit"


def test_latency_per_token_only_for_long_enough_outputs():
    assert latency_signal(2000.0, 100, per_token_min_output_tokens=20) == {"seconds": 2.0, "per_token_seconds": 0.02}
    assert latency_signal(2000.0, 5, per_token_min_output_tokens=20) == {"seconds": 2.0, "per_token_seconds": None}
    assert latency_signal(None, 100, per_token_min_output_tokens=20) is None


def test_empty_boundaries_give_no_boundary_verdicts():
    assert Boundaries().verdict("bot", "tool") == "no_boundary"


def test_context_support_matches_word_forms_leaves_out_preambles_and_notices_one_invented_name():
    context = ["The club knitted scarves for the shelter and donated 40 of them in March."]
    assert context_support("They knit scarves and donated 40.", context) == 1.0, "knit and knitted share a stem"
    assert context_support("Sure! Here is a short summary of the article: the club donated 40 scarves.", context) == 1.0
    grounded = hallucination_signal(output_text="The club donated 40 scarves in March.", context=context, **_DEFAULT_HALLUCINATION)
    invented = hallucination_signal(output_text="The club donated 40 scarves to Mercy Hospital in March.", context=context, **_DEFAULT_HALLUCINATION)
    assert not grounded["flag"] and invented["flag"], "one name the sources lack makes a short answer unsupported"


_DEFAULT_HALLUCINATION = {"mean_logprob": None, "finish_reason": None, "min_mean_logprob": -1.5, "min_context_support": 0.8, "flag_truncation": True}


def test_the_stem_table_empties_when_full_and_stems_every_text_as_before(monkeypatch):
    from monitor.signals import hallucination

    texts = [
        "Canberra became the capital of Australia in 1913, after a long rivalry.",
        "They knitted 40 scarves and donated them to the shelter's winter drive.",
        "The 'quoted' well-known names -- and hyphens -- are stripped.",
    ]
    expected = [hallucination._content_stems(text) for text in texts]
    monkeypatch.setattr(hallucination, "_STEM_OF", {})
    monkeypatch.setattr(hallucination, "STEM_TABLE_WORDS", 5)
    for _ in range(3):
        assert [hallucination._content_stems(text) for text in texts] == expected
        assert len(hallucination._STEM_OF) <= 5
    assert "knit" in expected[1] and "40" in expected[1] and "quot" in expected[2]
    long_token = "x" * (hallucination.STEM_TABLE_CHARS + 1)
    assert hallucination._content_stems(f"{long_token} scarves") == {long_token, "scarv"}
    assert long_token not in hallucination._STEM_OF, "a long token is stemmed, not kept"
