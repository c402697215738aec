"""The podium runtime: one place that owns the database, DBOS's lifecycle and the governed registries.

    podium.connect(settings)  inspect and control: runs, reviews, agents, audit, ledger (the CLI)
    podium.launch(settings, agents=..., tools=...)  also executes workflows and recovers interrupted ones

DBOS is a process-wide singleton, so at most one runtime is launched per process. A launched runtime claims an
executor id that no other live process holds (a file lock on SQLite, an advisory lock on PostgreSQL), so two
processes never re-run each other's steps, while a restarted process takes its predecessor's id back and
recovers its runs.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, DBOSConfig, Queue
from pydantic_ai.toolsets import FunctionToolset

from podium import _current
from podium._events import EventBus
from podium.agents import Agent, AgentRegistry
from podium.audit import AuditLog, Verification, record
from podium.cost import Budgets, Ledger, Price
from podium.errors import ConfigurationError, UsageError
from podium.governance import GovernedModel, GovernedToolset, Governor, KillReport, KillSwitch, RoutedModel
from podium.models import (
    SMOLLM2_135M,
    CircuitBreaker,
    ClassifierModel,
    LlamaCppModel,
    ModelCatalog,
    ModelConfig,
    ModelEntry,
    TrainedClassifier,
    TrainedModels,
    check_endpoint,
    openai_compatible,
)
from podium.people import People
from podium.policy import PolicySet
from podium.review import ExceptionStage, Reviews
from podium.settings import Settings
from podium.store import create_engine, is_sqlite, migrate, tables
from podium.tools import Outbox, fee_nano_usd, tool_team
from podium.workflows import DECLARED, WORK_QUEUE, Runs

EXECUTOR_SLOTS = 64


@dataclass(frozen=True)
class App:
    """What a podium process runs: its agents, the tools they may call, and models beyond the built-in ones.

    Workflows need no listing: declaring them with `@podium.workflow` registers them when their module is
    imported, so import the module that defines them before launching.
    """

    agents: Sequence[Agent] = ()
    tools: Sequence[Callable[..., Any]] = ()
    models: Sequence[TrainedClassifier | ModelEntry] = ()


_ADVISORY_LOCK_CLASS = 0x706F64  # "pod": the namespace of podium's executor locks in PostgreSQL


class Podium:
    """A connection to a podium database, and when launched, the process that runs workflows on it."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.events = EventBus()
        self._client = DBOSClient(system_database_engine=engine)
        self.policies = PolicySet.load(settings.policies_dir)
        self.agents = AgentRegistry(engine, self.policies)
        authorizer = self.agents.authorizer
        self.runs = Runs(engine, self._client, authorizer)
        self.reviews = Reviews(engine, self._client, settings.review_usd_per_hour, authorizer)
        self.people = People(engine, authorizer)
        self.audit = AuditLog.from_settings(engine, settings)
        self.kill_switch = KillSwitch(engine, self._client, self.agents, authorizer, self.runs.stop_many)
        self.ledger = Ledger(engine)
        self.budgets = Budgets(engine, authorizer)
        self.outbox = Outbox(engine)
        self.models = ModelCatalog()
        self.trained = TrainedModels(engine, settings.home / "models")
        self.governor = Governor(
            engine, self.events, self.policies, budgets=self.budgets, exceptions=ExceptionStage(engine)
        )
        self.executor_id: str | None = None
        self._work_queue: Queue | None = None
        self._toolset: FunctionToolset[Any] = FunctionToolset()
        self._governed_models: dict[tuple[str, str], GovernedModel] = {}
        self._governed_toolsets: dict[str, GovernedToolset] = {}
        self._tool_fees: dict[str, int] = {}
        self._tool_teams: dict[str, str] = {}
        self._routed_models: dict[tuple[str, tuple[str, ...]], RoutedModel] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._trained_classifiers: set[str] = set()
        self._release_executor: Callable[[], None] | None = None
        self._add_builtin_models()
        config_file = settings.config_file
        self.config = ModelConfig.load(config_file) if config_file else ModelConfig()
        self._add_configured_models()

    # -- lifecycle -------------------------------------------------------------------------------------------

    @classmethod
    def connect(cls, settings: Settings | None = None) -> Podium:
        """Open the database (migrating it if needed) without executing workflows."""
        settings = settings or Settings()
        engine = create_engine(settings.resolved_database_url)
        try:
            migrate(engine)
            DBOS.migrate(settings.resolved_database_url)
        except Exception:
            engine.dispose()
            raise
        return cls(settings, engine)

    @classmethod
    def launch(cls, settings: Settings | None = None, app: App | None = None) -> Podium:
        """Connect, register the app's agents, tools and models, then start executing workflows.

        Everything a workflow uses is registered before DBOS starts recovering interrupted runs.
        """
        app = app or App()
        if _current.get_or_none() is not None:
            raise UsageError("a podium runtime is already launched in this process; close it before launching another.")
        podium = cls.connect(settings)
        try:
            for tool in app.tools:
                podium._toolset.add_function(_inline(tool))
                podium._tool_fees[tool.__name__] = fee_nano_usd(tool)
                podium._tool_teams[tool.__name__] = tool_team(tool)
            for model in app.models:
                if isinstance(model, TrainedClassifier):
                    podium._add_trained_classifier(model.name)
                else:
                    podium.models.add(model.name, model.tier, model.load, model.price)
            podium._check_models(app)
            for agent in app.agents:
                podium.agents.register(agent.identity)
            podium.runs.declare(sorted(DECLARED))
            podium.executor_id, podium._release_executor = _claim_executor(podium.settings, podium.engine)
            config: DBOSConfig = {
                "name": "podium",
                "system_database_url": podium.settings.resolved_database_url,
                "system_database_engine": podium.engine,
                "application_version": podium.settings.application_version,
                "executor_id": podium.executor_id,
                "log_level": "WARNING",
            }
            DBOS(config=config)
            _current.set(podium)
            DBOS.launch()
            # Reservations of runs that ended while a process held them go back; running ones settle on re-run.
            podium.budgets.release_abandoned()
            # No concurrency cap: a run waiting days for a person holds its slot, and a cap would let a few such
            # runs stall the queue. CPU-bound local models serialise their own requests.
            podium._work_queue = DBOS.register_queue(WORK_QUEUE, polling_interval_sec=0.1, on_conflict="always_update")
        except BaseException:
            podium.close()
            raise
        return podium

    def close(self) -> None:
        if _current.get_or_none() is self:
            DBOS.destroy(destroy_registry=False)
            _current.set(None)
        self.governor.close()
        self.kill_switch.close()
        if self._release_executor is not None:
            self._release_executor()
            self._release_executor = None
        self._client.destroy()
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what agents act through -----------------------------------------------------------------------------

    def governed_model(self, agent: str, model: str) -> GovernedModel:
        """`model` as `agent` may use it: every request passes the governor."""
        governed = self._governed_models.get((agent, model))
        if governed is None:
            entry = self.models.entry(model)
            governed = self._governed_models[(agent, model)] = GovernedModel(
                self.models.get(model),
                governor=self.governor,
                agent=agent,
                name=model,
                tier=entry.tier,
                price=entry.price,
            )
        return governed

    def routed_model(self, agent: str, candidates: tuple[str, ...]) -> RoutedModel:
        """A model that routes each of `agent`'s requests to one of `candidates` (see docs/routing.md)."""
        routed = self._routed_models.get((agent, candidates))
        if routed is None:
            routed = self._routed_models[(agent, candidates)] = RoutedModel(
                [self.governed_model(agent, name) for name in self.expand_tiers(candidates)],
                engine=self.engine,
                group=agent,
                floor=self.config.routing.floor,
                breaker=self.breaker,
                on_breaker_open=self._audit_breaker_open,
            )
        return routed

    def route_outcome(self, run_id: str, success: bool) -> int:
        """Record whether the routed answers of `run_id` were good, and teach this process's routers at once
        (others learn it when they next start); return how many routed requests it credited."""
        routed = tables.routed
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(routed.c.id, routed.c.router, routed.c.model, routed.c.features).where(
                    routed.c.run_id == run_id, routed.c.success.is_(None)
                )
            ).all()
            if rows:
                conn.execute(
                    routed.update()
                    .where(routed.c.id.in_([row.id for row in rows]), routed.c.success.is_(None))
                    .values(success=int(success))
                )
        routers = {model.key: model for model in list(self._routed_models.values())}
        for row in rows:
            if row.router in routers:
                routers[row.router].learn(row.features, row.model, success)
        return len(rows)

    def expand_tiers(self, candidates: Sequence[str]) -> list[str]:
        """Model names for `candidates`, where `tier:intermediate` or `tier:frontier` stands for every model
        podium.toml declares in that tier (cheapest first; possibly none)."""
        names: list[str] = []
        for candidate in candidates:
            if candidate.startswith("tier:"):
                tier = candidate.removeprefix("tier:")
                declared = [n for n, setting in self.config.models.items() if setting.tier == tier]
                names += sorted(declared, key=lambda n: self.models.entry(n).price.cost_nano_usd(500, 500, 0))
            else:
                names.append(candidate)
        if not names:
            raise ConfigurationError(
                f"none of {', '.join(candidates)} names a model: declare one in podium.toml for those tiers."
            )
        return names

    def breaker(self, model: str) -> CircuitBreaker:
        """The circuit breaker of `model`'s provider, shared by every agent in this process."""
        found = self._breakers.get(model)
        if found is None:
            routing = self.config.routing
            found = self._breakers.setdefault(
                model, CircuitBreaker(routing.breaker_failures, routing.breaker_cooldown_s)
            )
        return found

    def _audit_breaker_open(self, model: str, error: str) -> None:
        with self.engine.begin() as conn:
            record(conn, "podium:router", "breaker.open", model, decision="opened", detail={"last_error": error})

    def governed_toolset(self, agent: str) -> GovernedToolset:
        """Every registered tool as `agent` may use it: every call passes the governor."""
        toolset = self._governed_toolsets.get(agent)
        if toolset is None:
            toolset = self._governed_toolsets[agent] = GovernedToolset(
                self._toolset, governor=self.governor, agent=agent, fees=self._tool_fees, teams=self._tool_teams
            )
        return toolset

    @property
    def work_queue(self) -> Queue:
        """The queue every launched process takes runs from."""
        if self._work_queue is None:
            raise UsageError("only a launched podium has a work queue: use podium.launch(...), not connect().")
        return self._work_queue

    def verify_audit(self) -> Verification:
        return self.audit.verify()

    def kill(self, scope: str, *, by: str, reason: str = "") -> KillReport:
        """Halt everything `scope` covers: `agent:<name>` (and its delegates), `workflow:<name>`, `team:<name>` or
        `all` (see docs/governance.md). Audited."""
        return self.kill_switch.kill(scope, by=by, reason=reason)

    def restore(self, scope: str, *, by: str, reason: str = "") -> None:
        """Lift the kill on `scope`, deliberately and audited."""
        self.kill_switch.restore(scope, by=by, reason=reason)

    def _add_builtin_models(self) -> None:
        self.models.add(
            "smollm2-135m",
            "local",
            lambda: LlamaCppModel.from_package("smollm2-135m", SMOLLM2_135M, threads=self.settings.llm_threads),
            self._local_price,
        )

    def _add_configured_models(self) -> None:
        for name, setting in self.config.models.items():
            price = setting.resolved_price(name)
            self.models.add(name, setting.tier, functools.partial(openai_compatible, name, setting), price)
        self.config.check_tiers({self.models.entry(name).tier for name in self.models.names()})

    def _check_models(self, app: App) -> None:
        """Before anything runs: every model an agent names exists, and every remote endpoint answers."""
        for agent in app.agents:
            for model in agent.identity.models:
                if model in ("tier:intermediate", "tier:frontier"):
                    continue  # any model declared for that tier (possibly none)
                if model not in self.models.names():
                    raise ConfigurationError(
                        f"agent {agent.name!r} lists model {model!r}, which is not configured (known: "
                        f"{', '.join(self.models.names())}, or tier:intermediate / tier:frontier for any model of "
                        f"that tier). Add [models.{model}] to podium.toml, or fix the name."
                    )
        for name, setting in self.config.models.items():
            check_endpoint(name, setting)

    def _add_trained_classifier(self, name: str) -> None:
        self.models.add(name, "local", lambda: self.trained.load_classifier(name), self._local_price)
        self._trained_classifiers.add(name)

    def learn(self, *, min_new: int | None = None) -> dict[str, Path]:
        """Corrections teach: retrain each classifier this process serves once `min_new` labels from reviews
        arrived (default PODIUM_RETRAIN_AFTER), and serve the latest file of each, whichever process trained it.
        Returns the files retrained now, by model."""
        retrained: dict[str, Path] = {}
        for name in sorted(self._trained_classifiers):
            path = self.trained.learn(name, min_new=self.settings.retrain_after if min_new is None else min_new)
            if path is not None:
                retrained[name] = path
            loaded = self.models.loaded(name)
            if isinstance(loaded, ClassifierModel) and self.trained.recorded_sha256(name) != loaded.sha256:
                latest = self.trained.load_classifier(name)
                loaded.replace(latest.classifier, latest.sha256)
        return retrained

    @property
    def _local_price(self) -> Price:
        return Price(compute_per_hour=self.settings.local_compute_usd_per_hour)


def _inline(tool: Callable[..., Any]) -> Callable[..., Any]:
    """A sync tool as a coroutine that runs it in place.

    pydantic-ai would otherwise start a worker thread for every call of a sync tool, which costs more than the
    governed call itself; a workflow step already runs in a thread of its own, so blocking it is what it expects.
    """
    if inspect.iscoroutinefunction(tool):
        return tool

    @functools.wraps(tool)
    async def run_in_place(*args: Any, **kwargs: Any) -> Any:
        return tool(*args, **kwargs)

    return run_in_place


def _claim_executor(settings: Settings, engine: sa.Engine) -> tuple[str, Callable[[], None]]:
    """Take an executor id no live process holds: the configured one, or the first free `<host>-<n>`."""
    candidates = (
        [settings.executor_id]
        if settings.executor_id
        else [f"{socket.gethostname()}-{n}" for n in range(1, EXECUTOR_SLOTS + 1)]
    )
    claim = _sqlite_claim(engine) if is_sqlite(engine) else _postgres_claim(engine)
    for candidate in candidates:
        release = claim(candidate)
        if release is not None:
            return candidate, release
    raise ConfigurationError(
        f"executor id {candidates[0]!r} is held by another live process. Give each process its own "
        "PODIUM_EXECUTOR_ID, or unset it to take a free slot."
        if settings.executor_id
        else f"all {EXECUTOR_SLOTS} executor slots on this host are taken; set PODIUM_EXECUTOR_ID explicitly."
    )


def _sqlite_claim(engine: sa.Engine) -> Callable[[str], Callable[[], None] | None]:
    database = engine.url.database or "podium.db"
    folder = Path(f"{database}.executors")
    folder.mkdir(parents=True, exist_ok=True)

    def claim(executor_id: str) -> Callable[[], None] | None:
        fd = os.open(folder / f"{executor_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return lambda: os.close(fd)  # closing the descriptor releases the lock, as does the process dying

    return claim


def _postgres_claim(engine: sa.Engine) -> Callable[[str], Callable[[], None] | None]:
    def claim(executor_id: str) -> Callable[[], None] | None:
        conn = engine.connect()
        held = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:cls, hashtext(:id))"),
            {"cls": _ADVISORY_LOCK_CLASS, "id": executor_id},
        ).scalar()
        conn.commit()
        if not held:
            conn.close()
            return None

        def release() -> None:
            conn.execute(
                sa.text("SELECT pg_advisory_unlock(:cls, hashtext(:id))"),
                {"cls": _ADVISORY_LOCK_CLASS, "id": executor_id},
            )
            conn.commit()
            conn.close()

        return release  # the session lock also ends when the process dies and its connection drops

    return claim


def connect(settings: Settings | None = None) -> Podium:
    """Open podium's database for inspection and control. See `Podium.connect`."""
    return Podium.connect(settings)


def launch(settings: Settings | None = None, app: App | None = None) -> Podium:
    """Launch podium in this process. See `Podium.launch`."""
    return Podium.launch(settings, app)


def route_outcome(success: bool) -> int:
    """Tell the router whether the routed answers of this run were good (say, a person approved the draft).

    Call it in the workflow, once the outcome is known; it teaches the routers of this process and returns how
    many routed requests it credited (0 after a restart: what awaits an outcome is kept in memory).
    """
    run_id = DBOS.workflow_id
    if run_id is None:
        raise UsageError(
            "route_outcome() reports on a workflow run: call it inside a @podium.workflow or @podium.step."
        )
    return _current.get().route_outcome(run_id, success)
