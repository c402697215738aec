"""The review queue over HTTP: the same operations as `podium review …`, with the same checks and errors.

    podium serve --port 8000
    curl -H "Authorization: Bearer $PODIUM_KEY" http://127.0.0.1:8000/v1/reviews

Every route needs a person's key (`podium keys issue --person EMAIL`) as `Authorization: Bearer <key>`, and
decides as that person: nobody is named in a request body. The server answers only to the host names it serves
(loopback by default; `--allow-host` adds one). Errors are JSON `{"error": …}`: 401 without a valid key, 403 for
a refusal (audited), 404 for an unknown id, 409 for a request already decided, 421 for a foreign Host header,
422 for bad input, 429 after too many refused keys from one address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from podium._runtime import Podium
from podium.api._auth import LOOPBACK_NAMES, AuthError, Gatekeeper, HostCheck, auth_error
from podium.errors import GovernanceError, NotFoundError, StaleError, UsageError
from podium.policy import Identity
from podium.review import ReviewRequest


class Decide(BaseModel):
    rationale: str = ""
    minutes: float = Field(0.0, ge=0, description="Minutes the decision took; costed at the person's loaded rate.")
    label: str | None = Field(None, description="The right label for the model judgement the request carries.")
    expected_digest: str | None = Field(None, description="The action digest the person was shown.")


class Edit(Decide):
    changes: dict[str, Any] = Field(description="Arguments to change; checked against the action's schema.")


class Reassign(BaseModel):
    to: str = Field(description="A person, or team:<name>.")
    rationale: str = ""


def _view(request: ReviewRequest) -> dict[str, Any]:
    return {**asdict(request), "waiting_on": request.waiting_on, "edited": request.edited}


def create_app(
    pod: Podium, *, allowed_hosts: Iterable[str] = LOOPBACK_NAMES, gatekeeper: Gatekeeper | None = None
) -> FastAPI:
    """An ASGI app over `pod` (a `podium.connect`ed Podium: deciding needs no launched workflows), answering to
    `allowed_hosts` only."""
    gate = gatekeeper or Gatekeeper(pod)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import asyncio

        flushing = asyncio.create_task(gate.flush_every_window())
        try:
            yield
        finally:
            flushing.cancel()
            await asyncio.to_thread(gate.flush)  # the last window's refusals are counted too

    api = FastAPI(
        title="podium", summary="Governed AI orchestration: the review queue.", version="1", lifespan=lifespan
    )
    api.add_middleware(HostCheck, allowed=allowed_hosts)
    api.add_exception_handler(AuthError, auth_error)
    Person = Annotated[Identity, Depends(gate.person)]  # noqa: N806 (a type, read as one in each route)

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
        me: Person,
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
    def stats(me: Person, since: float = 0.0) -> dict[str, Any]:
        """Exception rates, latency, SLA breaches, judgment yield and guardrail fatigue, since epoch `since`."""
        m = pod.reviews.metrics(since=since)
        return {
            **asdict(m),
            "exception_rate": m.exception_rate,
            "judgment_yield": m.judgment_yield,
            "fatigue": [{**asdict(f), "advice": f.advice} for f in m.fatigue],
        }

    @api.get("/v1/reviews/{review_id:path}")
    def show(me: Person, review_id: str) -> dict[str, Any]:
        return _view(pod.reviews.get(review_id))

    @api.post("/v1/reviews/{review_id:path}/approve")
    def approve(me: Person, review_id: str, body: Decide) -> dict[str, Any]:
        return _view(pod.reviews.approve(review_id, by=me, **body.model_dump()))

    @api.post("/v1/reviews/{review_id:path}/reject")
    def reject(me: Person, review_id: str, body: Decide) -> dict[str, Any]:
        return _view(pod.reviews.reject(review_id, by=me, **body.model_dump()))

    @api.post("/v1/reviews/{review_id:path}/edit")
    def edit(me: Person, review_id: str, body: Edit) -> dict[str, Any]:
        fields = body.model_dump()
        return _view(pod.reviews.edit(review_id, fields.pop("changes"), by=me, **fields))

    @api.post("/v1/reviews/{review_id:path}/claim")
    def claim(me: Person, review_id: str) -> dict[str, Any]:
        return _view(pod.reviews.claim(review_id, by=me))

    @api.post("/v1/reviews/{review_id:path}/reassign")
    def reassign(me: Person, review_id: str, body: Reassign) -> dict[str, Any]:
        return _view(pod.reviews.reassign(review_id, to=body.to, by=me, rationale=body.rationale))

    return api
