"""The review queue over HTTP: the same operations as `podium review …`, with the same checks and errors.

    podium serve --port 8000          # then GET http://127.0.0.1:8000/v1/reviews

People are named by `by` in each request, as on the command line; podium does not authenticate them yet, so
serve on loopback (the default) or behind a proxy that does. Errors are JSON `{"error": …}`: 404 for an unknown
id, 403 for a refusal (audited), 409 for a request already decided, 422 for bad input.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from podium._runtime import Podium
from podium.errors import GovernanceError, NotFoundError, StaleError, UsageError
from podium.review import ReviewRequest


class Decide(BaseModel):
    by: str = Field(description="Who decides, as they sign decisions (e.g. ana@example.com).")
    rationale: str = ""
    minutes: float = Field(0.0, ge=0, description="Minutes the decision took; costed at the person's loaded rate.")
    label: str | None = Field(None, description="The right label for the model judgement the request carries.")
    expected_digest: str | None = Field(None, description="The action digest the person was shown.")


class Edit(Decide):
    changes: dict[str, Any] = Field(description="Arguments to change; checked against the action's schema.")


class Claim(BaseModel):
    by: str


class Reassign(BaseModel):
    by: str
    to: str = Field(description="A person, or team:<name>.")
    rationale: str = ""


def _view(request: ReviewRequest) -> dict[str, Any]:
    return {**asdict(request), "waiting_on": request.waiting_on, "edited": request.edited}


def create_app(pod: Podium) -> FastAPI:
    """An ASGI app over `pod` (a `podium.connect`ed Podium: deciding needs no launched workflows)."""
    api = FastAPI(title="podium", summary="Governed AI orchestration: the review queue.", version="1")

    @api.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=404)

    @api.exception_handler(UsageError)
    async def bad_input(_: Request, exc: UsageError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=409 if isinstance(exc, StaleError) else 422)

    @api.exception_handler(GovernanceError)
    async def refused(_: Request, exc: GovernanceError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=403)

    @api.get("/v1/reviews")
    def list_reviews(
        status: str = "open",
        reason: str | None = None,
        min_value_usd: float | None = None,
        older_than_s: float | None = None,
        waiting_on: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Requests, oldest first; `status` is open (pending or held), a status, or all."""
        found = pod.reviews.list(
            status=None if status == "all" else status,
            reason=reason,
            min_value_usd=min_value_usd,
            older_than_s=older_than_s,
            waiting_on=waiting_on,
            limit=limit,
        )
        return [_view(r) for r in found]

    @api.get("/v1/reviews/stats")
    def stats(since: float = 0.0) -> dict[str, Any]:
        """Exception rates, latency, SLA breaches, judgment yield and guardrail fatigue, since epoch `since`."""
        m = pod.reviews.metrics(since=since)
        return {
            **asdict(m),
            "exception_rate": m.exception_rate,
            "judgment_yield": m.judgment_yield,
            "fatigue": [{**asdict(f), "advice": f.advice} for f in m.fatigue],
        }

    @api.get("/v1/reviews/{review_id:path}")
    def show(review_id: str) -> dict[str, Any]:
        return _view(pod.reviews.get(review_id))

    @api.post("/v1/reviews/{review_id:path}/approve")
    def approve(review_id: str, body: Decide) -> dict[str, Any]:
        return _view(pod.reviews.approve(review_id, **body.model_dump()))

    @api.post("/v1/reviews/{review_id:path}/reject")
    def reject(review_id: str, body: Decide) -> dict[str, Any]:
        return _view(pod.reviews.reject(review_id, **body.model_dump()))

    @api.post("/v1/reviews/{review_id:path}/edit")
    def edit(review_id: str, body: Edit) -> dict[str, Any]:
        fields = body.model_dump()
        return _view(pod.reviews.edit(review_id, fields.pop("changes"), **fields))

    @api.post("/v1/reviews/{review_id:path}/claim")
    def claim(review_id: str, body: Claim) -> dict[str, Any]:
        return _view(pod.reviews.claim(review_id, by=body.by))

    @api.post("/v1/reviews/{review_id:path}/reassign")
    def reassign(review_id: str, body: Reassign) -> dict[str, Any]:
        return _view(pod.reviews.reassign(review_id, to=body.to, by=body.by, rationale=body.rationale))

    return api
