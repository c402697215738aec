"""The README's example, run by tests/test_docs.py."""

import podium


def send_reply(customer_id: str, body: str) -> str:
    """A tool: queued in the outbox under the governed call's key, so a re-run step never sends twice."""
    return "queued" if podium.send_to_outbox("email", customer_id, body) else "already queued"


agent = podium.Agent("replier", owner="ops-lead@example.com", models=["smollm2-135m"], tools=[send_reply])


@podium.step
def draft(text: str) -> str:
    return agent.run(f"Reply politely to: {text}", model="smollm2-135m", max_tokens=60)


@podium.step
def send(customer: str, body: str) -> None:
    agent.call_tool("send_reply", customer_id=customer, body=body)


@podium.workflow(name="reply")
def reply(customer: str, text: str) -> str:
    body = draft(text)
    send(customer, body)
    return body


def main(settings: podium.Settings | None = None) -> None:
    with podium.launch(settings, podium.App(agents=[agent], tools=[send_reply])) as pod:
        print(reply.options(run_id="ticket-1").start("c-1", "Where is my card?").result())
        print(pod.ledger.totals(["ticket-1"]))


if __name__ == "__main__":
    main()
