"""Every error the API answers has the one shape its OpenAPI document declares, whoever raised it: a route,
FastAPI's validation, the router, the key check, the Host check, or a failure of ours (which shows no traceback)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from podium.store import tables
from podium.testing import key_for
from tests.api._requests import LEAD, add_request
from tests.api.conftest import Api

WRONG_KEY = "podp_000000000000_" + "x" * 43


def violations(value: Any, schema: dict[str, Any], doc: dict[str, Any], where: str = "$") -> list[str]:
    """Where `value` breaks `schema` (the subset of JSON schema FastAPI writes for the error model)."""
    if "$ref" in schema:
        return violations(value, doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], doc, where)
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    if schema.get("type") == "string":
        return [] if isinstance(value, str) else [f"{where}: not a string"]
    if schema.get("type") == "object":
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        found = [f"{where}: no {name!r}" for name in schema.get("required", []) if name not in value]
        found += [f"{where}: undeclared {name!r}" for name in value if name not in schema.get("properties", {})]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += violations(value[name], sub, doc, f"{where}.{name}")
        return found
    return [f"{where}: a schema this check does not read: {schema}"]


def declared_error(api: Api, response: Any, path: str | None, method: str = "get") -> dict[str, str]:
    """The error `response` holds, once it is checked against what the OpenAPI document declares for its status
    (for `path`, or the error model itself where no route matched)."""
    doc = api.client.get("/openapi.json").json()
    status = str(response.status_code)
    if path is None:
        schema = {"$ref": "#/components/schemas/Error"}
    else:
        declared = doc["paths"][path][method]["responses"]
        assert status in declared, f"{method.upper()} {path} answered {status}, which it does not declare"
        schema = declared[status]["content"]["application/json"]["schema"]
    body = response.json()
    assert violations(body, schema, doc) == [], body
    assert "\n" not in body["error"]["message"], "one line"
    return dict(body["error"])


def test_each_error_a_route_answers_is_declared_and_has_the_one_shape(api: Api) -> None:
    now = time.time()
    add_request(api.pod, "open-1", created_at=now)
    add_request(api.pod, "done-1", created_at=now, status="approved", decided_at=now)
    one, reviews, approve = "/v1/reviews/{review_id}", "/v1/reviews", "/v1/reviews/{review_id}/approve"
    get, post = api.client.get, api.client.post

    no_key = get("/v1/reviews")
    assert declared_error(api, no_key, reviews)["code"] == "unauthenticated"
    assert no_key.headers["WWW-Authenticate"] == 'Bearer realm="podium"'
    wrong = get("/v1/reviews", headers={"Authorization": f"Bearer {WRONG_KEY}"})
    assert (wrong.status_code, declared_error(api, wrong, reviews)["code"]) == (401, "unauthenticated")

    refused = post("/v1/reviews/open-1/approve", json={}, headers=api.auth)
    assert refused.status_code == 403
    assert "may not review.decide" in declared_error(api, refused, approve, "post")["message"]
    unknown = get("/v1/reviews/nope", headers=api.auth)
    assert declared_error(api, unknown, one) == {
        "code": "not_found",
        "message": "no review request 'nope'. `podium review list` shows the pending ones.",
    }
    lead = {"Authorization": f"Bearer {key_for(api.pod, LEAD)}"}
    again = post("/v1/reviews/done-1/approve", json={}, headers=lead)
    assert again.status_code == 409 and "decided once" in declared_error(api, again, approve, "post")["message"]
    foreign = get("/v1/reviews", headers={**api.auth, "Host": "evil.example"})
    assert foreign.status_code == 421 and "--allow-host" in declared_error(api, foreign, reviews)["message"]

    bogus = get("/v1/reviews", params={"status": "bogus"}, headers=api.auth)
    assert bogus.status_code == 422
    assert "query status: Input should be 'open', 'all', 'pending'" in declared_error(api, bogus, reviews)["message"]
    typed = post("/v1/reviews/open-1/approve", json={"minutes": "a while"}, headers=lead)
    assert typed.status_code == 422 and "body minutes:" in declared_error(api, typed, approve, "post")["message"]
    garbled = post("/v1/reviews/open-1/approve", content=b"{nope", headers={**lead, "content-type": "application/json"})
    assert "the body is not valid JSON" in declared_error(api, garbled, approve, "post")["message"]

    nowhere = get("/v2/anything", headers=api.auth)
    assert (nowhere.status_code, declared_error(api, nowhere, None)["code"]) == (404, "not_found")
    method = api.client.delete("/v1/reviews", headers=api.auth)
    assert method.status_code == 405 and "it takes GET" in declared_error(api, method, None)["message"]
    assert api.pod.reviews.get("open-1").status == "pending", "nothing refused changed the request"


def test_refusals_past_the_limit_are_429_in_the_one_shape(sqlite_api: Api) -> None:
    """The fixture's gatekeeper allows 3 refused keys a window from one address."""
    api = sqlite_api
    for _ in range(3):
        assert api.client.get("/v1/reviews", headers={"Authorization": f"Bearer {WRONG_KEY}"}).status_code == 401
    limited = api.client.get("/v1/reviews", headers={"Authorization": f"Bearer {WRONG_KEY}"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert api.client.get("/v1/reviews", headers=api.auth).status_code == 200, "only refusals are limited"
    assert declared_error(api, limited, "/v1/reviews")["code"] == "rate_limited"


def test_a_failure_of_ours_is_a_500_in_the_one_shape_without_its_traceback(api: Api) -> None:
    """A database that lost its reviews table: the route fails, the client learns only that it did."""
    with api.pod.engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {tables.reviews.name} RENAME TO lost_reviews"))
    failed = api.client.get("/v1/reviews", headers=api.auth)
    assert failed.status_code == 500
    error = declared_error(api, failed, "/v1/reviews")
    assert error["code"] == "internal" and "server's log" in error["message"]
    assert tables.reviews.name not in failed.text and "Traceback" not in failed.text and "SELECT" not in failed.text
