"""The review routes answer with ISO 8601 UTC times, validated statuses and cursor pages."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest

import podium
from tests.api._requests import add_request
from tests.api.conftest import Api

T0 = datetime(2026, 11, 2, 9, 30, 0, 250000, tzinfo=UTC).timestamp()


def test_times_are_iso_8601_utc_strings(api: Api) -> None:
    add_request(api.pod, "open-1", created_at=T0)
    add_request(api.pod, "done-1", created_at=T0, status="rejected", decided_at=T0 + 90.5)
    shown = api.client.get("/v1/reviews/open-1", headers=api.auth).json()
    assert (shown["created_at"], shown["deadline_at"], shown["level_deadline_at"], shown["decided_at"]) == (
        "2026-11-02T09:30:00.250000Z",
        "2026-11-02T10:30:00.250000Z",
        "2026-11-02T10:30:00.250000Z",
        None,
    )
    (done,) = api.client.get("/v1/reviews", params={"status": "rejected"}, headers=api.auth).json()["items"]
    assert (done["id"], done["decided_at"]) == ("done-1", "2026-11-02T09:31:30.750000Z")


def test_status_is_one_of_the_statuses_and_a_wrong_one_is_refused(api: Api) -> None:
    add_request(api.pod, "open-1", created_at=T0)
    add_request(api.pod, "done-1", created_at=T0, status="approved", decided_at=T0)

    def ids(status: str) -> list[str]:
        page = api.client.get("/v1/reviews", params={"status": status}, headers=api.auth).json()
        return [r["id"] for r in page["items"]]

    assert ids("open") == ["open-1"] and ids("approved") == ["done-1"] and ids("expired") == []
    assert ids("all") == ["done-1", "open-1"], "created in the same instant: by id"
    bogus = api.client.get("/v1/reviews", params={"status": "bogus"}, headers=api.auth)
    assert bogus.status_code == 422
    assert bogus.json()["error"]["message"] == (
        "query status: Input should be 'open', 'all', 'pending', 'held', 'approved', 'rejected', 'expired' or "
        "'cancelled'. Correct it and send the request again."
    )


def test_cursor_pages_walk_the_queue_once_in_created_then_id_order(api: Api) -> None:
    # Ids out of order with their times, and three requests created in the same instant (ordered by id).
    times = {"e": T0, "c": T0 + 1, "a": T0 + 1, "d": T0 + 1, "b": T0 + 2, "g": T0 + 3, "f": T0 + 4}
    for review_id, created_at in times.items():
        add_request(api.pod, review_id, created_at=created_at)
    pages, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/v1/reviews", params=params, headers=api.auth).json()
        pages.append([r["id"] for r in page["items"]])
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
        if len(pages) == 1:
            add_request(api.pod, "h", created_at=T0 + 5)  # created while the list is read: it joins the end
    assert pages == [["e", "a", "c"], ["d", "b", "g"], ["f", "h"]]
    exact = api.client.get("/v1/reviews", params={"limit": 8}, headers=api.auth).json()
    assert (len(exact["items"]), exact["next_cursor"]) == (8, None), "no cursor to an empty page"

    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "x" * 201}):
        assert api.client.get("/v1/reviews", params=bad, headers=api.auth).status_code == 422, bad
    forged = api.client.get("/v1/reviews", params={"cursor": "not-ours"}, headers=api.auth)
    assert forged.status_code == 422 and "pass a page's `next_cursor` as it is" in forged.json()["error"]["message"]
    for review_id in ("a\x00b", "\ud800"):  # not text: PostgreSQL would fail on it (a 500), not refuse it
        raw = json.dumps([T0, review_id]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        forged = api.client.get("/v1/reviews", params={"cursor": cursor}, headers=api.auth)
        assert forged.status_code == 422 and "review id" in forged.json()["error"]["message"], review_id
        with pytest.raises(podium.UsageError, match="review id"):
            api.pod.reviews.list(after=(T0, review_id))


def test_older_than_is_an_iso_8601_duration_and_since_an_instant_with_its_zone(api: Api) -> None:
    now = time.time()
    add_request(api.pod, "old", created_at=now - 3 * 3600)
    add_request(api.pod, "new", created_at=now - 60)

    def listed(**params: str) -> list[str]:
        return [r["id"] for r in api.client.get("/v1/reviews", params=params, headers=api.auth).json()["items"]]

    assert (listed(older_than="PT2H"), listed(older_than="P1D"), listed()) == (["old"], [], ["old", "new"])
    for bad in ("2h", "-PT1H", "3600"):
        assert api.client.get("/v1/reviews", params={"older_than": bad}, headers=api.auth).status_code == 422, bad

    stats = api.client.get("/v1/reviews/stats", params={"since": "2026-01-01T00:00:00Z"}, headers=api.auth)
    assert stats.status_code == 200 and stats.json()["open"] == 2
    naive = api.client.get("/v1/reviews/stats", params={"since": "2026-01-01T00:00:00"}, headers=api.auth)
    assert naive.status_code == 422 and "query since: Input should have timezone info" in naive.text


def test_a_field_the_body_does_not_know_is_refused_not_dropped(api: Api) -> None:
    add_request(api.pod, "open-1", created_at=T0)
    answer = api.client.post("/v1/reviews/open-1/approve", json={"by": "someone-else@example.com"}, headers=api.auth)
    assert answer.status_code == 422 and "by" in answer.json()["error"]["message"]
    assert api.client.get("/v1/reviews/open-1", headers=api.auth).json()["status"] == "pending"
