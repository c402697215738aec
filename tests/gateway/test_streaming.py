"""What a stream said, kept as it streams, so that a whole stream compares with a shadow's whole answer."""

from __future__ import annotations

from typing import Any

import pytest

from podium.gateway._auto import said_in
from podium.gateway._streaming import Tally, delta_text
from podium.governance import answers_agree


def _chunk(delta: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": index, "delta": delta, "finish_reason": None}]}


def _call(index: int, arguments: str, name: str | None = None) -> dict[str, Any]:
    function = {"arguments": arguments} | ({"name": name} if name else {})
    return {"tool_calls": [{"index": index, "function": function} | ({"id": f"call_{index}"} if name else {})]}


# OpenAI's documented shape: a call's name comes once, its arguments in pieces, calls interleaved by index.
STREAMED = [
    _chunk({"role": "assistant", "content": "Refunding "}),
    _chunk({"content": "both."}),
    _chunk(_call(0, "", name="refund")),
    _chunk(_call(1, '{"order"', name="notify")),
    _chunk(_call(0, '{"order": "A-1", ')),
    _chunk(_call(0, '"amount": 12}')),
    _chunk(_call(1, ': "A-1"}')),
    _chunk({"content": "ignored: another choice"}, index=1),
    {"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}},
]
WHOLE = {
    "choices": [
        {
            "message": {
                "content": "Refunding both.",
                "tool_calls": [
                    {"id": "x", "function": {"name": "refund", "arguments": '{"amount": 12, "order": "A-1"}'}},
                    {"id": "y", "function": {"name": "notify", "arguments": '{"order": "A-1"}'}},
                ],
            }
        }
    ]
}


def _kept(bodies: list[dict[str, Any]]) -> Tally:
    tally = Tally(keeps_answer=True)
    for body in bodies:
        tally.keep(body)
    return tally


def test_a_whole_stream_says_what_the_same_answer_given_whole_says() -> None:
    answer = _kept(STREAMED).answer()
    assert answer is not None
    assert said_in(answer) == said_in(WHOLE)
    assert answers_agree(said_in(answer), said_in(WHOLE))
    other_amount = _kept([*STREAMED[:5], _chunk(_call(0, '"amount": 13}')), *STREAMED[6:]]).answer()
    assert other_amount is not None and not answers_agree(said_in(other_amount), said_in(WHOLE))


def test_a_stream_cut_short_is_no_answer_to_compare() -> None:
    cut = _kept(STREAMED[:4])
    cut.cut_by(RuntimeError("the client left"))
    assert cut.answer() is None
    left = _kept(STREAMED)
    left.ended = "client_disconnected"
    assert left.answer() is None


def test_calls_are_told_in_their_index_order_and_whole_calls_without_one_by_their_id() -> None:
    reversed_ = _kept([_chunk(_call(1, "{}", name="notify")), _chunk(_call(0, "{}", name="refund"))]).answer()
    assert reversed_ is not None
    assert [c["function"]["name"] for c in reversed_["choices"][0]["message"]["tool_calls"]] == ["refund", "notify"]
    whole = [{"id": f"call_{n}", "function": {"name": n, "arguments": "{}"}} for n in ("a", "b")]
    unindexed = _kept([_chunk({"tool_calls": whole[:1]}), _chunk({"tool_calls": whole[1:]})]).answer()
    assert unindexed is not None
    assert [c["function"]["name"] for c in unindexed["choices"][0]["message"]["tool_calls"]] == ["a", "b"]


def test_a_tally_keeps_the_answer_only_when_asked() -> None:
    tally = Tally()
    for body in STREAMED:
        tally.keep(body)
    assert (tally.answer(), tally.said, tally.calls) == (None, [], {})


ODD_CHUNKS: list[Any] = [
    {},
    {"choices": None},
    {"choices": 5},
    {"choices": "abc"},
    {"choices": {"delta": {"content": "x"}}},
    {"choices": ["text"]},
    {"choices": [{"delta": None}]},
    {"choices": [{"delta": {"content": 7, "tool_calls": 5}}]},
    {"choices": [{"delta": {"tool_calls": True}}]},
    {"choices": [{"delta": {"tool_calls": "call"}}]},
    {"choices": [{"delta": {"tool_calls": ["x", {"index": [1]}, {"function": "f"}, {"function": {"arguments": 3}}]}}]},
]


@pytest.mark.parametrize("body", ODD_CHUNKS)
def test_a_chunk_of_any_shape_is_counted_and_kept_without_failing(body: Any) -> None:
    assert delta_text(body) == ""
    answer = _kept([body]).answer()
    assert answer is not None and answer["choices"][0]["message"]["content"] == ""
