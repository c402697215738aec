"""The route stage of the governor: a model that sends each request to one of several governed models.

The router picks the model; if that model's provider fails (timeout, refused connection, 5xx, rate limit) the
request falls back to the next stronger model, then the weaker ones, skipping any whose circuit breaker is open.
Every attempt is a governed call of its own, so a failed one is in the ledger as retry waste and in the audit log
with the error, and the one that answers carries the router's explanation. A request the provider rejects as
such (bad request, context too long, auth) is the caller's problem, not the provider's: it is raised, not retried
elsewhere, and does not count against the breaker.

The router learns from outcomes the workflow reports for its run (`podium.route_outcome(success)`, for example
after a person approved or rejected a routed draft): each routed request of the run is credited to the model that
answered it. Routed requests and their outcomes are stored (as hashed features, never the text), so a router
starts from everything learnt before, in any process, and an outcome reported after a restart still teaches.

With `routing.shadow_rate`, that share of requests served by a weaker model is also put to the strongest candidate
(the shadow sample; which calls is drawn from each call's key, so a re-run step draws the same): a governed, paid
call whose answer is compared with the served one and stored beside it. An answer that agrees (the same tool calls,
and the same text or JSON) shares the served answer's outcome, so the router learns the strong model's too; one that
disagrees stays unjudged, and `podium.route_disagreed()` tells the workflow, whose exception rules can then ask a
person. A shadow that fails or is refused (a provider fault, a budget, a run limit, a policy that wants a person)
costs what it cost and changes nothing for the request; a stopped run stops.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelServerError,
    ModelUnavailableError,
)
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from podium._tiers import TIERS
from podium.errors import ActorStopped, GovernanceError, ModelUnavailable, UsageError
from podium.governance._compute import NOMINAL_COMPUTE_SECONDS, MeasuredCompute
from podium.governance._shadow import SHADOW_OF, Said, answers_agree, in_shadow_sample, said
from podium.governance._site import CallSite
from podium.governance._wrappers import GovernedModel, _response_text, expected_tokens
from podium.models import (
    Breakers,
    Features,
    ModelCatalog,
    RouteDecision,
    RouteTier,
    RoutingSetting,
    Task,
    to_chat,
)
from podium.store import insert_if_absent, tables


class RoutedModel(Model):
    """Routes each request among `candidates`, governed models of one agent, weakest tier first."""

    def __init__(
        self,
        candidates: Sequence[GovernedModel],
        *,
        engine: sa.Engine,
        group: str,
        routing: RoutingSetting,
        breakers: Breakers,
        compute: MeasuredCompute,
        known_as: dict[str, str] | None = None,
    ) -> None:
        """`known_as`: each candidate under its provider's name, for the router's prior (`ModelCatalog.known_as`)."""
        super().__init__()
        self._candidates = sorted(candidates, key=lambda m: (TIERS.index(m.tier), _nominal_cost(m)))
        self._by_name = {model.name: model for model in self._candidates}
        self._group = group
        self._breakers = breakers
        self._compute = compute
        self.router = routing.router([RouteTier(m.name, _nominal_cost(m)) for m in self._candidates], known_as)
        self._shadow_rate = routing.shadow_rate
        self._engine = engine
        self._lock = threading.Lock()
        self.key = f"{group}:{'|'.join(self._by_name)}"
        with engine.connect() as conn:
            learnt = conn.execute(
                sa.select(
                    tables.routed.c.model, tables.routed.c.features, tables.routed.c.success, tables.routed.c.shadow_of
                )
                .where(tables.routed.c.router == self.key, tables.routed.c.success.is_not(None))
                .order_by(tables.routed.c.at)
            ).all()
        for row in learnt:
            self.learn(row.features, row.model, bool(row.success), shadow=row.shadow_of is not None)

    def learn(self, features: str, model: str, success: bool, *, shadow: bool = False) -> None:
        """Learn one stored outcome: `features` as stored (`Features.stored`); a shadow answer's teaches the
        model's estimate but does not steer the cost weight (it was not served)."""
        with self._lock:
            self.router.learn(Features.from_stored(features), model, success, shadow=shadow)

    @property
    def model_name(self) -> str:
        return "routed:" + "|".join(self._by_name)

    @property
    def system(self) -> str:
        return "podium-router"

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        text = "\n".join(turn.content for turn in to_chat(messages))
        tokens_in, tokens_out = expected_tokens(len(text), model_settings)
        costs = {m.name: self._expected_cost(m, tokens_in, tokens_out) for m in self._candidates}
        task = Task(text, self._group)
        decision = await asyncio.to_thread(self._decide, task, costs)  # with a prior, it embeds the text (~20 ms)
        failures: list[str] = []
        for name in self._fallback_order(decision.tier):
            breaker = self._breakers.get(name)
            if not breaker.allow():
                failures.append(f"{name}: circuit breaker open")
                continue
            detail = decision.explain() | ({"route_fallback_from": decision.tier} if name != decision.tier else {})
            served: list[CallSite] = []
            try:
                response = await self._by_name[name].request_explained(
                    messages,
                    model_settings,
                    model_request_parameters,
                    detail,
                    self._remembering(decision, name, served),
                )
            except ModelAPIError as exc:
                if not _provider_fault(exc):
                    breaker.abandoned()
                    raise
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                if breaker.failed():
                    self._breakers.opened(name, failures[-1])
                continue
            except BaseException:
                breaker.abandoned()
                raise
            breaker.succeeded()
            if served and served[0].run_id is not None and in_shadow_sample(served[0].key, self._shadow_rate):
                await self._shadow(
                    decision, name, served[0], response, (messages, model_settings, model_request_parameters)
                )
            return response
        raise ModelUnavailable(
            "no model could take the request: " + "; ".join(failures) + ". Check those providers (podium models list).",
            attempts=failures,
        )

    def _decide(self, task: Task, costs: dict[str, float]) -> RouteDecision:
        with self._lock:
            return self.router.decide(task, costs=costs)

    def _expected_cost(self, model: GovernedModel, tokens_in: int, tokens_out: int) -> float:
        """Nano-dollars a request is expected to cost on `model`, its local compute included (`MeasuredCompute`)."""
        compute = self._compute.seconds(model.name, tokens_in + tokens_out)
        return float(model.price.cost_nano_usd(tokens_in, tokens_out, compute))

    def _remembering(self, decision: RouteDecision, model: str, served: list[CallSite]) -> Callable[[CallSite], None]:
        """Store the request that `model` answered, to be credited when its run reports an outcome (and note its
        site in `served`). Keyed by the answering call's site, so a re-run step stores it once."""

        def remember(site: CallSite) -> None:
            served.append(site)
            if site.run_id is None:
                return  # outside any run: no outcome will come
            self._store(decision.features, model, site)

        return remember

    async def _shadow(
        self,
        decision: RouteDecision,
        served_by: str,
        served: CallSite,
        answer: ModelResponse,
        request: tuple[list[ModelMessage], ModelSettings | None, ModelRequestParameters],
    ) -> None:
        """Put the request to the strongest candidate too (this served call was drawn for the shadow sample) and
        store its answer beside the served one, with whether the two agree."""
        strongest = self._candidates[-1].name
        breaker = self._breakers.get(strongest)
        if served_by == strongest or not breaker.allow():
            return
        detail = decision.explain() | {SHADOW_OF: served_by}
        sites: list[CallSite] = []
        try:
            shadow = await self._by_name[strongest].request_explained(*request, detail, sites.append)
        except ActorStopped:
            breaker.abandoned()
            raise  # the run was stopped: that is not the shadow's to swallow
        except ModelAPIError as exc:
            if not _provider_fault(exc):
                breaker.abandoned()
            elif breaker.failed():
                self._breakers.opened(strongest, f"{strongest}: {type(exc).__name__}: {exc}")
            return  # the served answer stands
        except (GovernanceError, UsageError):  # a budget, a limit, a policy that wants a person: no shadow now
            breaker.abandoned()
            return
        except BaseException:
            breaker.abandoned()
            raise
        breaker.succeeded()
        agrees = answers_agree(_said(answer), _said(shadow))
        self._store(decision.features, strongest, sites[0], shadow_of=served.key, agrees=agrees)

    def _store(
        self,
        features: Features,
        model: str,
        site: CallSite,
        *,
        shadow_of: str | None = None,
        agrees: bool | None = None,
    ) -> None:
        with self._engine.begin() as conn:
            insert_if_absent(
                conn,
                tables.routed,
                id=site.key,
                router=self.key,
                run_id=site.run_id,
                model=model,
                features=features.stored(),  # as decided: the prior's odds are not worked out again
                success=None,
                at=time.time(),
                shadow_of=shadow_of,
                agrees=None if agrees is None else int(agrees),
            )

    def _fallback_order(self, chosen: str) -> list[str]:
        """The chosen model, then the stronger ones in order, then the weaker ones strongest first."""
        names = list(self._by_name)
        at = names.index(chosen)
        return [chosen, *names[at + 1 :], *reversed(names[:at])]


class RoutedModels:
    """This process's routed models, one per agent and list of candidates, and the outcomes that teach them."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        governed: Callable[[str, str], GovernedModel],
        catalog: ModelCatalog,
        breakers: Breakers,
        compute: MeasuredCompute,
    ) -> None:
        self._engine = engine
        self._governed = governed
        self._catalog = catalog
        self._breakers = breakers
        self._compute = compute
        self._models: dict[tuple[str, tuple[str, ...]], RoutedModel] = {}

    def get(self, agent: str, candidates: tuple[str, ...]) -> RoutedModel:
        """A model that routes each of `agent`'s requests to one of `candidates` (see docs/routing.md)."""
        routed = self._models.get((agent, candidates))
        if routed is None:
            names = self._catalog.expand_tiers(candidates)
            routed = self._models[(agent, candidates)] = RoutedModel(
                [self._governed(agent, name) for name in names],
                engine=self._engine,
                group=agent,
                routing=self._catalog.config.routing,
                breakers=self._breakers,
                compute=self._compute,
                known_as=self._catalog.known_as(names),
            )
        return routed

    def outcome(self, run_id: str, success: bool) -> int:
        """Record whether the routed answers of `run_id` were good, and teach this process's routers at once
        (others learn it when they next start); return how many routed requests it credited."""
        routed = tables.routed
        judged = sa.or_(routed.c.shadow_of.is_(None), routed.c.agrees == 1)  # a disagreeing shadow stays unjudged
        with self._engine.begin() as conn:
            rows = conn.execute(
                sa.select(routed.c.id, routed.c.router, routed.c.model, routed.c.features, routed.c.shadow_of).where(
                    routed.c.run_id == run_id, routed.c.success.is_(None), judged
                )
            ).all()
            if rows:
                conn.execute(
                    routed.update()
                    .where(routed.c.id.in_([row.id for row in rows]), routed.c.success.is_(None))
                    .values(success=int(success))
                )
        routers = {model.key: model for model in list(self._models.values())}
        for row in rows:
            if row.router in routers:
                routers[row.router].learn(row.features, row.model, success, shadow=row.shadow_of is not None)
        return sum(row.shadow_of is None for row in rows)

    def disagreed(self, run_id: str) -> bool:
        """Whether a shadow answer in `run_id` disagreed with the answer served (see the module's docstring)."""
        routed = tables.routed
        query = sa.select(routed.c.id).where(routed.c.run_id == run_id, routed.c.agrees == 0).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).first() is not None


def _provider_fault(error: ModelAPIError) -> bool:
    """Whether the provider, not the request, failed: unreachable, timed out, overloaded, rate-limited or 5xx."""
    if isinstance(error, ModelConnectionError | ModelUnavailableError | ModelServerError | ModelRateLimitError):
        return True
    return isinstance(error, ModelHTTPError) and (error.status_code >= 500 or error.status_code == 429)


def _said(response: ModelResponse) -> Said | None:
    """What an answer says, to compare: its text and the tools it calls with their arguments."""
    calls = ((part.tool_name, part.args_as_dict()) for part in response.parts if isinstance(part, ToolCallPart))
    return said(_response_text(response), calls)


def _nominal_cost(model: GovernedModel) -> float:
    """What a typical request (500 tokens in, 500 out, a second of compute) costs on `model`: for ordering tiers."""
    return float(model.price.cost_nano_usd(500, 500, NOMINAL_COMPUTE_SECONDS))
