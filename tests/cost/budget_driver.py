"""A podium process for the budget crash test: run one paid call, optionally freezing right after its
reservation (before the call and its ledger commit) so the test can SIGKILL it there.

    python -m tests.cost.budget_driver '{"home": ..., "database_url": ..., "run_id": ..., "freeze": true}'
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import podium
from podium import Event
from tests.cost._budget_app import app, budget_flow


def main(spec: dict[str, object]) -> None:
    settings = podium.Settings(home=Path(str(spec["home"])), database_url=str(spec["database_url"]))

    def freeze(event: Event) -> None:
        if spec["freeze"] and event.kind == "budget_reserved":
            print("FROZEN", flush=True)
            threading.Event().wait()  # until SIGKILL

    pod = podium.launch(settings, app)
    pod.events.subscribe(freeze)
    print("RESULT", budget_flow.options(run_id=str(spec["run_id"])).start("42 Main St").result(), flush=True)
    pod.close()
    os._exit(0)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
