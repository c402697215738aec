"""The OpenAPI document declares every status each route can answer, with the one error model, and the key."""

from __future__ import annotations

import re
from pathlib import Path

from podium.gateway._problems import GATEWAY_STATUSES
from tests.api.conftest import Api

EVERY_KEYED_ROUTE = {
    "401",
    "403",
    "413",
    "421",
    "422",
    "429",
    "500",
}  # the key check, the Host check, validation, a bug
ERROR = {"$ref": "#/components/schemas/Error"}
GATEWAY_ROUTES = {
    ("post", "/v1/chat/completions"),
    ("post", "/v1/embeddings"),
    ("get", "/v1/models"),
    ("get", "/v1/podium/audit/{request_id}"),
    ("post", "/v1/podium/feedback"),
    ("post", "/v1/messages"),
}


def test_every_route_declares_the_statuses_it_can_answer_with_the_error_model(sqlite_api: Api) -> None:
    doc = sqlite_api.client.get("/openapi.json").json()  # public, like the docs that read it
    operations = [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]
    assert {(method, path) for path, method, _ in operations} == {
        ("get", "/health"),
        ("get", "/v1/reviews"),
        ("get", "/v1/reviews/stats"),
        ("get", "/v1/reviews/{review_id}"),
        *(("post", f"/v1/reviews/{{review_id}}/{verb}") for verb in ("approve", "reject", "edit", "claim", "reassign")),
        *GATEWAY_ROUTES,
    }, "a new route: say here what it answers"
    for path, method, op in operations:
        if (method, path) in GATEWAY_ROUTES:  # answered in the client's API's own error shape
            errors = set(op["responses"]) - {"200"}
            assert errors == {str(s) for s in GATEWAY_STATUSES}, (method, path)
            for status in errors:
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                shape = "AnthropicError" if path == "/v1/messages" else "OpenAIError"
                assert schema == {"$ref": f"#/components/schemas/{shape}"}, (method, path, status)
            continue
        statuses = set(op["responses"]) - {"200"}
        for status in statuses:
            assert op["responses"][status]["content"]["application/json"]["schema"] == ERROR, (method, path, status)
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer.get("$ref", "").startswith("#/components/schemas/"), (method, path, "a typed answer")
        if path == "/health":
            assert statuses == {"421", "500", "503"} and "security" not in op
            continue
        expected = set(EVERY_KEYED_ROUTE)
        if "{review_id}" in path:
            expected.add("404")
        if method == "post":
            expected.add("409")  # decided, claimed or escalated meanwhile
        assert statuses == expected, (method, path)
        assert op["security"] == [{"bearer": []}], (method, path)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A person's key: `podium keys issue --person EMAIL`.",
    }
    codes = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
    assert {"unauthenticated", "refused", "not_found", "conflict", "wrong_host", "invalid", "internal"} <= set(codes)
    assert "HTTPValidationError" not in doc["components"]["schemas"], "FastAPI's own 422 shape is never answered"


def test_the_docs_list_every_error_code_with_its_status(sqlite_api: Api) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "review.md").read_text()
    table = dict(re.findall(r"^  \| (\d{3}) \| `(\w+)` \|", page, flags=re.MULTILINE))
    doc = sqlite_api.client.get("/openapi.json").json()
    assert sorted(table.values()) == sorted(doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"])
    declared = {s for ops in doc["paths"].values() for op in ops.values() for s in op["responses"]} - {"200"}
    assert declared <= set(table), "docs/review.md: a status a route declares is missing from the table"
