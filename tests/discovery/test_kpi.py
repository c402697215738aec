"""The migration KPI on real rows: direct requests from stored sightings, gateway requests from the ledger of real
requests through `podium serve` (a fallback's failed try not counted), by person and by team, over the last weeks
in which anything happened."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import openai
import pytest

from podium import Podium, Settings
from podium.discovery import SeenUser, Service, Sighting, migration, sanction_service
from podium.discovery._store import day_uses, iso_week, record_run
from podium.discovery._who import Attributed
from podium.testing import TEST_ADMIN, key_for, sign_in
from tests.gateway.conftest import serving
from tests.gateway.openai_server import OpenAIServer, Script

PAT, ANA = "pat@example.com", "ana@example.com"
CLAUDE = Service("claude", "Claude", "Anthropic", "chat-assistant", ("claude.ai",), equivalent="chat")


def sighting(user: str, department: str, day: dt.date, requests: int) -> Attributed:
    at = dt.datetime.combine(day, dt.time(9), dt.UTC).timestamp()
    seen = Sighting("10.0.0.1", None, "claude", "claude.ai", day.isoformat(), requests, 10, 20, at, at + 60)
    return Attributed(user, department, seen)


@pytest.mark.parametrize("settings", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_share_counts_served_requests_per_week_person_and_team(settings: Settings, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    weeks_ago = [today - dt.timedelta(weeks=n) for n in (20, 10, 0)]
    with OpenAIServer() as failing, OpenAIServer() as answering:
        failing.script = Script(fail_status=503)
        price = "{ input_per_mtok = 1.0, output_per_mtok = 2.0 }"
        config = tmp_path / "podium.toml"
        config.write_text(
            "".join(
                f'[models.{name}]\ntier = "frontier"\nbase_url = "{server.base_url}"\nmodel = "m"\nprice = {price}\n'
                for name, server in (("first", failing), ("second", answering))
            )
            + '[gateway.aliases]\nclaude = ["first", "second"]\n',  # the first fails: the second answers
            encoding="utf-8",
        )
        (tmp_path / "policies").mkdir()
        configured = settings.model_copy(update={"config": config, "policies": tmp_path / "policies"})
        with Podium.connect(configured) as pod:
            uses = [sighting(PAT, "sales", day, 3) for day in weeks_ago] + [sighting(ANA, "sales", today, 1)]
            record_run(pod.engine, "run-1", time.time(), [], day_uses(uses), skipped_lines=0)
            seen = [SeenUser(PAT, "sales"), SeenUser(ANA, "sales")]
            admin = sign_in(pod, TEST_ADMIN)
            sanction_service(pod, CLAUDE, seen, by=admin, instructions=tmp_path / "keys", gateway_url="http://gw")
            assert [(s.week, s.gateway, s.direct) for s in migration(pod, by=admin) if s.who == PAT] == [
                (iso_week(day.isoformat()), 0, 3) for day in weeks_ago
            ]
        with Podium.connect(configured) as pod, serving(pod) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=key_for(pod, PAT), max_retries=0)
            for _ in range(2):
                client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}])
            assert len(failing.chat_requests()) == 2 and len(answering.chat_requests()) == 2
            this_week = iso_week(today.isoformat())

            admin = sign_in(pod, TEST_ADMIN)
            by_person = {(s.who, s.week): s for s in migration(pod, by=admin, weeks=2)}
            assert {week for _, week in by_person} == {iso_week(weeks_ago[1].isoformat()), this_week}
            pat = by_person[PAT, this_week]
            assert (pat.gateway, pat.direct, pat.share) == (2, 3, pytest.approx(2 / 5))  # failed tries not counted
            assert (by_person[ANA, this_week].gateway, by_person[ANA, this_week].share) == (0, 0.0)

            (sales,) = [s for s in migration(pod, by=admin, per="team", weeks=1)]
            assert (sales.who, sales.gateway, sales.direct) == ("sales", 2, 3 + 1)
            assert migration(pod, by=admin, services=["other"]) == []
