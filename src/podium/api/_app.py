"""The review queue over HTTP: the same operations as `podium review …`, with the same checks and errors.

    podium serve --port 8000
    curl -H "Authorization: Bearer $PODIUM_KEY" http://127.0.0.1:8000/v1/reviews

Every `/v1` route needs a person's key (`podium keys issue --person EMAIL`) as `Authorization: Bearer <key>`, and
decides as that person: nobody is named in a request body. The server answers only to the host names it serves
(loopback by default; `--allow-host` adds one).

Public, without a key: `GET /health` (liveness: ok, the database answers, podium's version; nothing else), and the
API's documentation (`/docs`, `/redoc`, `/openapi.json` and their assets, served from installed packages, no
CDN), which describe only what the installed code already says.

Errors have one shape, `{"error": {"code", "message"}}` (see `_errors.py`), and each route declares its statuses
in OpenAPI. Times are ISO 8601 UTC strings; lists page with a cursor (see `_views.py`).
"""

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query, Security
from fastapi.security import HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from podium._runtime import Podium
from podium._version import __version__
from podium.api._auth import LOOPBACK_NAMES, AuthError, Gatekeeper, HostCheck, auth_error
from podium.api._errors import install, responses
from podium.api._limits import BodyLimit
from podium.api._views import Health, Review, ReviewPage, Stats, StatusFilter, cursor_after, position
from podium.errors import UsageError
from podium.gateway import Gateway, gateway_router
from podium.policy import Identity

# Declares the key in OpenAPI (the docs' "Authorize" button); `Gatekeeper.person` checks it.
_BEARER = HTTPBearer(
    scheme_name="bearer", auto_error=False, description="A person's key: `podium keys issue --person EMAIL`."
)
MAX_PAGE = 500


class Body(BaseModel):
    """A request body: a field it does not know is refused, never dropped (a `by` in it would otherwise look
    honoured while the decision is the key's person's)."""

    model_config = ConfigDict(extra="forbid")


class Decide(Body):
    rationale: str = ""
    minutes: float = Field(0.0, ge=0, description="Minutes the decision took; costed at the person's loaded rate.")
    label: str | None = Field(None, description="The right label for the model judgement the request carries.")
    expected_digest: str | None = Field(None, description="The action digest the person was shown.")


class Edit(Decide):
    changes: dict[str, Any] = Field(description="Arguments to change; checked against the action's schema.")


class Reassign(Body):
    to: str = Field(description="A person, or team:<name>.")
    rationale: str = ""


def create_app(
    pod: Podium, *, allowed_hosts: Iterable[str] = LOOPBACK_NAMES, gatekeeper: Gatekeeper | None = None
) -> FastAPI:
    """An ASGI app over `pod` (a `podium.connect`ed Podium: deciding needs no launched workflows), answering to
    `allowed_hosts` only."""
    gate = gatekeeper or Gatekeeper(pod)

    gateway = Gateway(pod)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import asyncio

        flushing = asyncio.create_task(gate.flush_every_window())
        try:
            yield
        finally:
            flushing.cancel()
            await gateway.drain()  # streams still being recorded
            await asyncio.to_thread(gate.flush)  # the last window's refusals are counted too

    api = FastAPIOffline(
        title="podium",
        summary="Governed AI orchestration: the review queue, and the OpenAI- and Anthropic-compatible gateway.",
        version="1",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would send the spec's URL to swagger.io
    )
    api.add_middleware(BodyLimit)
    api.add_middleware(HostCheck, allowed=allowed_hosts)
    install(api)
    api.add_exception_handler(AuthError, auth_error)
    # A type, read as one in each route; evaluated here, so this module must not postpone annotations.
    Person = Annotated[Identity, Depends(gate.person)]  # noqa: N806
    v1 = APIRouter(
        prefix="/v1", dependencies=[Security(_BEARER)], responses=responses(401, 403, 413, 421, 422, 429, 500)
    )
    decision = responses(404, 409)

    @api.get("/health", tags=["health"], responses=responses(421, 500, 503))
    def health() -> Health:
        """Liveness, without a key: the server answers and its database does; podium's version."""
        try:
            with pod.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            raise HTTPException(503, "the database does not answer; the server's log says why.") from None
        return Health(status="ok", database="reachable", version=__version__)

    @v1.get("/reviews")
    def list_reviews(
        me: Person,
        status: Annotated[StatusFilter, Query(description="open (pending or held), a status, or all.")] = "open",
        reason: Annotated[str | None, Query(description="A reason code or its prefix (compliance).")] = None,
        min_value_usd: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
        older_than: Annotated[
            timedelta | None, Query(description="Only requests older than this: ISO 8601 duration (PT4H, P2D).")
        ] = None,
        waiting_on: Annotated[str | None, Query(description="A person, or team:<name>.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(max_length=200, description="A page's `next_cursor`.")] = None,
    ) -> ReviewPage:
        """Requests, oldest first (by created_at, then id), a page at a time."""
        if older_than is not None and older_than < timedelta(0):
            raise UsageError("query older_than: give a duration of zero or more (PT4H, P2D).")
        found = pod.reviews.list(
            status=None if status == "all" else status,
            reason=reason,
            min_value_usd=min_value_usd,
            older_than_s=None if older_than is None else older_than.total_seconds(),
            waiting_on=waiting_on,
            limit=limit + 1,  # one more tells whether there is a next page
            after=None if cursor is None else position(cursor),
        )
        page = found[:limit]
        more = len(found) > limit
        return ReviewPage(items=[Review.of(r) for r in page], next_cursor=cursor_after(page[-1]) if more else None)

    @v1.get("/reviews/stats")
    def stats(
        me: Person,
        since: Annotated[
            AwareDatetime | None, Query(description="ISO 8601 with a zone (2026-12-01T00:00:00Z).")
        ] = None,
    ) -> Stats:
        """Exception rates, latency, SLA breaches, judgment yield and guardrail fatigue, since `since` (all time
        if omitted)."""
        return Stats.of(pod.reviews.metrics(since=0.0 if since is None else since.timestamp()))

    @v1.get("/reviews/{review_id:path}", responses=responses(404))
    def show(me: Person, review_id: str) -> Review:
        return Review.of(pod.reviews.get(review_id))

    @v1.post("/reviews/{review_id:path}/approve", responses=decision)
    def approve(me: Person, review_id: str, body: Decide) -> Review:
        return Review.of(pod.reviews.approve(review_id, by=me, **body.model_dump()))

    @v1.post("/reviews/{review_id:path}/reject", responses=decision)
    def reject(me: Person, review_id: str, body: Decide) -> Review:
        return Review.of(pod.reviews.reject(review_id, by=me, **body.model_dump()))

    @v1.post("/reviews/{review_id:path}/edit", responses=decision)
    def edit(me: Person, review_id: str, body: Edit) -> Review:
        fields = body.model_dump()
        return Review.of(pod.reviews.edit(review_id, fields.pop("changes"), by=me, **fields))

    @v1.post("/reviews/{review_id:path}/claim", responses=decision)
    def claim(me: Person, review_id: str) -> Review:
        return Review.of(pod.reviews.claim(review_id, by=me))

    @v1.post("/reviews/{review_id:path}/reassign", responses=decision)
    def reassign(me: Person, review_id: str, body: Reassign) -> Review:
        return Review.of(pod.reviews.reassign(review_id, to=body.to, by=me, rationale=body.rationale))

    api.include_router(v1)
    api.include_router(gateway_router(gateway, gate.gateway_identity))
    return api
