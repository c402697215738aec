"""What a stream said, kept as it streams, so that a whole stream compares with a shadow's whole answer."""

from __future__ import annotations

from typing import Any

from podium.gateway._auto import said_in
from podium.gateway._streaming import Tally
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
    tally = Tally()
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


def test_chunks_of_any_shape_are_kept_without_failing() -> None:
    odd: list[Any] = [
        {},
        {"choices": None},
        {"choices": ["text"]},
        {"choices": [{"delta": None}]},
        {"choices": [{"delta": {"content": 7, "tool_calls": ["x", {"index": [1]}, {"function": "f"}]}}]},
    ]
    answer = _kept(odd).answer()
    assert answer is not None and answer["choices"][0]["message"]["content"] == ""
