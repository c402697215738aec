"""A podium process for the crash tests: triage some tickets, optionally freezing at a chosen event.

    python -m tests.durability.driver '{"database_url": ..., "home": ..., "model": ..., "sha256": ...,
                                        "tickets": [...], "freeze_at": ["step_started", 2] | null}'

It prints `FROZEN <event>` and blocks when the freeze point is reached (the test then kills it with SIGKILL),
or `SETTLED` once every ticket's run has finished or waits for a person.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import podium
from podium import Event, Settings
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.demo import wait_until_settled
from podium_examples.support_triage.tickets import Ticket


def main(spec: dict[str, object]) -> None:
    settings = Settings(home=Path(str(spec["home"])), database_url=str(spec["database_url"]))
    with podium.connect(settings) as pod:
        pod.trained.adopt(wf.INTENT_MODEL, Path(str(spec["model"])), str(spec["sha256"]))
    tickets = [Ticket(**t) for t in spec["tickets"]]  # type: ignore[attr-defined]
    freeze_at = spec.get("freeze_at")
    seen = 0
    lock = threading.Lock()

    def freeze(event: Event) -> None:
        nonlocal seen
        if freeze_at is None or event.kind != freeze_at[0]:  # type: ignore[index]
            return
        with lock:
            seen += 1
            hit = seen == freeze_at[1]  # type: ignore[index]
        if hit:
            print(f"FROZEN {event.kind} {event.name} {event.run_id}", flush=True)
            threading.Event().wait()  # until SIGKILL

    pod = podium.launch(settings, wf.app)
    pod.events.subscribe(freeze)
    run_ids = [wf.triage_ticket.options(run_id=f"crash-{t.id}").start(t).id for t in tickets]
    wait_until_settled(pod, run_ids)
    print("SETTLED", flush=True)
    sys.stdout.flush()
    # Runs waiting for a person hold DBOS threads until their deadline; the state is durable, so just end.
    import os

    os._exit(0)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
