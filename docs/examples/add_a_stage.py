"""How to add a stage to the governor, shown in docs/architecture.md and run by tests/test_docs.py."""

import json
from typing import ClassVar

import podium
from podium.governance import CallContext, Refusal, Stage


class NoSecretsOut(Stage):
    """Tool calls whose arguments carry an API key are refused (and audited with this stage's name)."""

    name: ClassVar[str] = "no-secrets-out"

    def check(self, ctx: CallContext) -> None:
        if ctx.call.kind == "tool" and "sk-" in str(ctx.call.arguments):
            error = podium.ActionDenied(f"{ctx.call.describe()} would send an API key: remove it.")
            raise Refusal(error, "denied", why="secret")


# -- using it ------------------------------------------------------------------------------------------------------


def post_note(text: str) -> str:
    """A tool with a side effect: a note in the outbox."""
    return "posted" if podium.send_to_outbox("notes", "team", text) else "already posted"


agent = podium.Agent("note-taker", owner="ops-lead@example.com", models=[], tools=[post_note])


def main(settings: podium.Settings | None = None) -> list[str]:
    """Post a note, then try one that carries a key; say what happened and what the audit log says."""
    with podium.launch(settings, podium.App(agents=[agent], tools=[post_note])) as pod:
        pod.governor.add_stage(NoSecretsOut(), before="budgets")
        with podium.request_scope("note-1"):
            said = [agent.call_tool("post_note", text="the deploy went fine")]
        try:
            with podium.request_scope("note-2"):
                agent.call_tool("post_note", text="the key is sk-live-1234")
        except podium.ActionDenied as refused:
            said.append(f"refused: {refused}")
        *_, last = pod.audit.entries(actor="agent:note-taker")
        said.append(f"audited: {last.entry.decision} by stage {json.loads(last.entry.detail)['stage']}")
    return said


if __name__ == "__main__":
    print(*main(), sep="\n")
