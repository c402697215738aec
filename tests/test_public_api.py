"""The public API is deliberate: this list changes only on purpose."""

from __future__ import annotations

import podium


def test_exported_members() -> None:
    assert sorted(podium.__all__) == [
        "ActionDenied",
        "ActionRejected",
        "ActorStopped",
        "Agent",
        "App",
        "BudgetExhausted",
        "ConfigurationError",
        "Escalation",
        "Event",
        "EventBus",
        "ExceptionRules",
        "GovernanceError",
        "Identity",
        "InputDataError",
        "Judgement",
        "MCPServer",
        "ModelFileError",
        "ModelUnavailable",
        "NotFoundError",
        "OWNER",
        "Podium",
        "PodiumError",
        "Price",
        "ReviewRequired",
        "Reviewed",
        "Run",
        "Settings",
        "StaleError",
        "Unauthenticated",
        "UsageError",
        "__version__",
        "assess",
        "connect",
        "current_call",
        "launch",
        "request_scope",
        "route_disagreed",
        "route_outcome",
        "send_to_outbox",
        "step",
        "tool",
        "workflow",
    ]
    for name in podium.__all__:
        assert getattr(podium, name) is not None


def test_errors_survive_pickling_with_their_fields() -> None:
    import pickle

    error = podium.ActionDenied("agent 'a' is not allowed tool 't'", agent="a", resource="t", run_id="r")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is podium.ActionDenied
    assert (str(copy), copy.fields) == (str(error), {"agent": "a", "resource": "t", "run_id": "r"})
    assert isinstance(copy, podium.GovernanceError) and not isinstance(copy, podium.UsageError)


def test_a_review_request_survives_pickling_with_the_action_it_carries() -> None:
    """DBOS records a step's ReviewRequired and may re-raise it in another process."""
    import pickle

    from podium.errors import ProposedAction

    action = ProposedAction("a", "tool", "t", "run-1", ("low_confidence",), "d" * 64, {"x": 1}, {}, {"summary": "s"})
    error = podium.ReviewRequired("waits for a person", agent="a", resource="t", run_id="run-1", request=action)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is podium.ReviewRequired
    assert copy.request == action


def test_a_review_request_recorded_by_an_older_podium_still_names_its_action() -> None:
    """A run waiting for a person across an upgrade: DBOS re-raises the ReviewRequired it recorded, with the loose
    fields podium 0.1 gave it."""
    import pickle

    old = podium.ReviewRequired.__new__(podium.ReviewRequired)
    fields = {
        "agent": "a",
        "kind": "tool",
        "resource": "t",
        "run_id": "run-1",
        "reasons": ("low_confidence",),
        "arguments": {"x": 1},
        "schema": {},
        "input_digest": "d" * 64,
        "facts": {"summary": "s"},
        "judgement": None,
    }
    old.__dict__.update(message="waits", fields=fields)
    recorded = pickle.dumps(old)
    copy = pickle.loads(recorded)
    assert (copy.request.reasons, copy.request.input_digest, copy.request.arguments) == (
        ("low_confidence",),
        "d" * 64,
        {"x": 1},
    )
