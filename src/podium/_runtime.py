"""The podium runtime: one place that owns the database, DBOS's lifecycle and the governed registries.

    podium.connect(settings)  inspect and control: runs, reviews, agents, audit, ledger (the CLI)
    podium.launch(settings, agents=..., tools=...)  also executes workflows and recovers interrupted ones

DBOS is a process-wide singleton, so at most one runtime is launched per process. A launched runtime claims an
executor id that no other live process holds (a file lock on SQLite, an advisory lock on PostgreSQL), so two
processes never re-run each other's steps, while a restarted process takes its predecessor's id back and
recovers its runs.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import sqlalchemy as sa

from podium import _current
from podium._events import EventBus, Listener
from podium._executors import claim_executor
from podium._lazy import Deferred, Part
from podium.errors import Unauthenticated, UsageError
from podium.settings import Settings
from podium.store import MIGRATIONS, create_engine, current_version, migrate, safe_url

if TYPE_CHECKING:
    from dbos import DBOSClient, Queue
    from pydantic_ai.toolsets import FunctionToolset

    from podium.agents import Agent, AgentRegistry
    from podium.audit import AuditLog, Verification
    from podium.cost import Budgets, Ledger, Price
    from podium.governance import (
        GovernedModel,
        GovernedToolset,
        Governor,
        KillReport,
        KillSwitch,
        MeasuredCompute,
        RoutedModel,
        RoutedModels,
        ToolDeclaration,
    )
    from podium.models import (
        Breakers,
        ModelCatalog,
        ModelConfig,
        ModelEntry,
        ServedClassifiers,
        TrainedClassifier,
        TrainedModels,
    )
    from podium.people import People, PersonKeys
    from podium.policy import Authorizer, Entity, Identity, PolicySet
    from podium.review import Reviews
    from podium.tools import MCPServer, Outbox
    from podium.workflows import Runs


@dataclass(frozen=True)
class App:
    """What a podium process runs: its agents, the tools they may call (functions, and MCP servers whose tools
    agents are granted one by one: docs/tools.md), and models beyond the built-in ones.

    Workflows need no listing: declaring them with `@podium.workflow` registers them when their module is
    imported, so import the module that defines them before launching.
    """

    agents: Sequence[Agent] = ()
    tools: Sequence[Callable[..., Any] | MCPServer] = ()
    models: Sequence[TrainedClassifier | ModelEntry] = ()


def _dbos_client(engine: sa.Engine) -> DBOSClient:
    from dbos import DBOSClient

    return DBOSClient(system_database_engine=engine)


class Podium:
    """A connection to a podium database, and when launched, the process that runs workflows on it."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.events = EventBus()
        self._building = threading.RLock()  # a part may need others built first (see Part)
        self._deferred_client = Deferred(lambda: _dbos_client(engine))
        self._client = cast("DBOSClient", self._deferred_client)
        self.executor_id: str | None = None
        self._work_queue: Queue | None = None
        self._governed_models: dict[tuple[str, str], GovernedModel] = {}
        self._governed_toolsets: dict[str, GovernedToolset] = {}
        self._tool_declarations: dict[str, ToolDeclaration] = {}
        self._mcp_servers: dict[str, MCPServer] = {}

        self._release_executor: Callable[[], None] | None = None

    # -- its parts, each built on first use ------------------------------------------------------------------

    @Part
    def policies(self) -> PolicySet:
        from podium.policy import PolicySet

        return PolicySet.load(self.settings.policies_dir)

    @Part
    def agents(self) -> AgentRegistry:
        from podium.agents import AgentRegistry

        return AgentRegistry(self.engine, self.policies)

    @Part
    def runs(self) -> Runs:
        from podium.workflows import Runs

        authorizer = cast("Authorizer", Deferred(lambda: self.agents.authorizer))  # only start, cancel, resume ask it
        return Runs(self.engine, self._client, authorizer)

    @Part
    def reviews(self) -> Reviews:
        from podium.review import Reviews

        return Reviews(self.engine, self._client, self.settings.review_usd_per_hour, self.agents.authorizer)

    @Part
    def people(self) -> People:
        from podium.people import People

        return People(self.engine, self.agents.authorizer)

    @Part
    def keys(self) -> PersonKeys:
        from podium.people import PersonKeys

        return PersonKeys(self.engine, self.agents.authorizer)

    @Part
    def audit(self) -> AuditLog:
        from podium.audit import AuditLog

        return AuditLog.from_settings(self.engine, self.settings)

    @Part
    def kill_switch(self) -> KillSwitch:
        from podium.governance import KillSwitch

        return KillSwitch(self.engine, self._client, self.agents, self.agents.authorizer, self.runs.stop_many)

    @Part
    def ledger(self) -> Ledger:
        from podium.cost import Ledger

        return Ledger(self.engine)

    @Part
    def budgets(self) -> Budgets:
        from podium.cost import Budgets

        return Budgets(self.engine, self.agents.authorizer, models=self.models.names)

    @Part
    def outbox(self) -> Outbox:
        from podium.tools import Outbox

        return Outbox(self.engine)

    @Part
    def governor(self) -> Governor:
        from podium.governance import Containment, Governor, RunLimits
        from podium.review import ExceptionStage
        from podium.security import Egress, InformationFlow, Screening

        governor = Governor(
            self.engine, self.events, self.policies, budgets=self.budgets, exceptions=ExceptionStage(self.engine)
        )
        # Before authorisation: Cedar decides on where a consequential call's arguments came from.
        governor.add_stage(InformationFlow(self.engine, self.config.security.recipients), before="authorisation")
        # And on what its arguments carry and what its front door's tool results looked like (docs/screening.md).
        governor.add_stage(Screening(self.engine), before="authorisation")
        # After it: a granted tool's URL targets must be ones Cedar's `egress` permits (docs/tools.md).
        governor.add_stage(Egress(self.engine, self.policies, self._agent_principal), before="exceptions")
        # A run past its limits stops before anything else is asked; a failing tool's calls are refused before
        # budgets hold anything for them (docs/governance.md, "Cascading failures").
        governor.add_stage(RunLimits(self.engine, self.config.resilience), before="admission")
        governor.add_stage(Containment(self.engine, self.config.resilience), before="budgets")
        # Watches only: each local model's compute a token, which workflow routing and podium/auto cost it at.
        governor.add_stage(self.measured_compute, before="budgets")
        return governor

    @Part
    def measured_compute(self) -> MeasuredCompute:
        from podium.governance import MeasuredCompute

        return MeasuredCompute(self.engine)

    @Part
    def _toolset(self) -> FunctionToolset[Any]:
        from pydantic_ai.toolsets import FunctionToolset

        return FunctionToolset()

    @Part
    def config(self) -> ModelConfig:
        from podium.models import ModelConfig

        config_file = self.settings.config_file
        return ModelConfig.load(config_file) if config_file else ModelConfig()

    @Part
    def _local_price(self) -> Price:
        from podium.cost import Price

        return Price(compute_per_hour=self.settings.local_compute_usd_per_hour)

    @Part
    def models(self) -> ModelCatalog:
        from podium.models import ModelCatalog

        return ModelCatalog.configured(self.config, local_price=self._local_price)

    @Part
    def trained(self) -> TrainedModels:
        from podium.models import TrainedModels

        authorizer = cast("Authorizer", Deferred(lambda: self.agents.authorizer))  # asked when a person trains one
        return TrainedModels(self.engine, self.settings.resolved_models_dir, authorizer)

    @Part
    def classifiers(self) -> ServedClassifiers:
        from podium.models import ServedClassifiers

        return ServedClassifiers(
            self.models, self.trained, price=self._local_price, retrain_after=self.settings.retrain_after
        )

    @Part
    def breakers(self) -> Breakers:
        from podium.models import Breakers

        routing = self.config.routing
        return Breakers(self.engine, failures=routing.breaker_failures, cooldown_s=routing.breaker_cooldown_s)

    @Part
    def routed(self) -> RoutedModels:
        from podium.governance import RoutedModels

        return RoutedModels(
            self.engine,
            governed=self.governed_model,
            catalog=self.models,
            breakers=self.breakers,
            compute=self.measured_compute,
        )

    # -- lifecycle -------------------------------------------------------------------------------------------

    @classmethod
    def connect(cls, settings: Settings | None = None, *, create: bool = True) -> Podium:
        """Open the database (migrating it if needed) without executing workflows.

        With `create=False` (the command line's read commands) a database that does not exist is an error, not
        made: a read on the wrong home says so instead of leaving an empty database behind.
        """
        settings = settings or Settings()
        url = settings.resolved_database_url
        if not create:
            _require_sqlite_file(url)
        engine = create_engine(url)
        try:
            if not create and not sa.inspect(engine).has_table("podium_schema_version"):
                raise UsageError(_no_database(url))
            if create or current_version(engine) < MIGRATIONS[-1].version:
                migrate(engine)
            if create:
                from dbos import DBOS

                DBOS.migrate(url)  # DBOS's tables too, so that podium can read its runs without loading DBOS
        except Exception:
            engine.dispose()
            raise
        podium = cls(settings, engine)
        if create:
            try:
                podium._check_configuration()
            except BaseException:
                podium.close()
                raise
        return podium

    def _check_configuration(self) -> None:
        """Build the parts that read configuration (the audit log's witnesses, podium.toml's models and routing),
        so that a mistake there is refused as the database is opened, not at first use."""
        _ = self.audit, self.models

    @classmethod
    def launch(
        cls, settings: Settings | None = None, app: App | None = None, *, listener: Listener | None = None
    ) -> Podium:
        """Connect, register the app's agents, tools and models, then start executing workflows.

        Everything a workflow uses is registered before DBOS starts recovering interrupted runs; so is `listener`,
        which hears every event of this process (`podium worker` logs each run with it, recovered ones too).
        """
        from dbos import DBOS, DBOSConfig

        from podium.models import TrainedClassifier
        from podium.review import await_decision  # noqa: F401 - its DBOS steps registered before DBOS launches
        from podium.tools import declaration_of
        from podium.workflows import DECLARED, WORK_QUEUE

        app = app or App()
        if _current.get_or_none() is not None:
            raise UsageError("a podium runtime is already launched in this process; close it before launching another.")
        podium = cls.connect(settings)
        if listener is not None:
            podium.events.subscribe(listener)
        try:
            podium.audit.check_key()  # a process not given the log's signing key fails now, not at its checkpoint
            for tool in app.tools:
                if _is_mcp_server(tool):
                    podium._add_mcp_server(cast("MCPServer", tool))
                    continue
                function = cast("Callable[..., Any]", tool)
                podium._toolset.add_function(_inline(function))
                podium._tool_declarations[function.__name__] = declaration_of(function)
            podium._check_tool_names()
            for model in app.models:
                if isinstance(model, TrainedClassifier):
                    podium.classifiers.serve(model.name)
                else:
                    podium.models.add(model.name, model.tier, model.load, model.price)
            podium.models.check((agent.name, agent.identity.models) for agent in app.agents)
            for agent in app.agents:
                podium.agents.register(agent.identity)
            podium.runs.declare(sorted(DECLARED))
            podium.executor_id, podium._release_executor = claim_executor(podium.settings, podium.engine)
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
            from dbos import DBOS

            DBOS.destroy(destroy_registry=False)
            _current.set(None)
        built = self.__dict__
        for part in ("governor", "kill_switch"):
            if part in built:
                built[part].close()
        if self._release_executor is not None:
            self._release_executor()
            self._release_executor = None
        if self._deferred_client.made is not None:
            self._deferred_client.made.destroy()
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
            from podium.governance import GovernedModel

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
        return self.routed.get(agent, candidates)

    def route_outcome(self, run_id: str, success: bool) -> int:
        """Record whether the routed answers of `run_id` were good and teach this process's routers (see
        `RoutedModels.outcome`); return how many routed requests it credited."""
        return self.routed.outcome(run_id, success)

    def learn(self, *, min_new: int | None = None) -> dict[str, Path]:
        """Corrections teach: retrain each classifier this process serves once `min_new` labels from reviews
        arrived (default PODIUM_RETRAIN_AFTER), and serve the latest file of each, whichever process trained it.
        Returns the files retrained now, by model."""
        return self.classifiers.learn(min_new=min_new)

    def governed_toolset(self, agent: str, needs: Collection[str] = ()) -> GovernedToolset:
        """Every registered tool as `agent` may use it: every call passes the governor. The tools of the MCP servers
        that the tool names in `needs` come from are included: an MCP server is asked for its tools only by those
        who need one of them, so one that is down fails no one else's calls."""
        servers = sorted({name.split("_", 1)[0] for name in needs if "_" in name} & self._mcp_servers.keys())
        toolset = self._governed_toolsets.get(agent)
        if toolset is None or servers:
            from pydantic_ai.toolsets import CombinedToolset

            from podium.governance import GovernedToolset

            # With MCP servers, one per use: a combined toolset keeps the state of the run that entered it.
            wrapped = CombinedToolset([self._toolset, *(self._mcp_servers[s] for s in servers)])
            toolset = GovernedToolset(
                wrapped if servers else self._toolset,
                governor=self.governor,
                agent=agent,
                declarations=self._tool_declarations,
            )
            if not servers:
                self._governed_toolsets[agent] = toolset
        return toolset

    def _add_mcp_server(self, server: MCPServer) -> None:
        if server.name in self._mcp_servers:
            raise UsageError(
                f"two MCP servers are named {server.name!r} in podium.App(tools=[...]); give each its own name."
            )
        self._mcp_servers[server.name] = server

    def _check_tool_names(self) -> None:
        """A local tool named like an MCP server's tools (`<server>_…`) would be ambiguous: refused at launch."""
        for name in self._tool_declarations:
            server = name.split("_", 1)[0]
            if "_" in name and server in self._mcp_servers:
                raise UsageError(
                    f"tool {name!r} is named like the tools of MCP server {server!r} ({server}_<tool>): rename the "
                    "function, or the server."
                )

    def _agent_principal(self, agent: str) -> Entity:
        """`agent` as Cedar sees it, from its registry entry (for checks a running tool makes: egress redirects)."""
        from podium.policy import Identity

        return self.agents.principal(Identity("agent", agent, ""))

    @property
    def work_queue(self) -> Queue:
        """The queue every launched process takes runs from."""
        if self._work_queue is None:
            raise UsageError("only a launched podium has a work queue: use podium.launch(...), not connect().")
        return self._work_queue

    def verify_audit(self) -> Verification:
        return self.audit.verify()

    def authenticate(self, key: str, *, audit: bool = True) -> Identity:
        """Who `key` proves: a person (a key from `podium keys issue` or `podium init`) or an agent (a key from the
        registry). Pass the identity as `by=` to act as them; a name is never accepted instead. Raises
        `Unauthenticated` for a key that is malformed, unknown, revoked or expired, audited unless `audit` is
        False (the HTTP server counts its refusals in aggregate instead)."""
        from podium.agents import KEYS as AGENT_KEYS
        from podium.audit import record
        from podium.policy import Identity

        agent_key_id, _ = AGENT_KEYS.split(key)
        if agent_key_id:
            return Identity("agent", self.agents.authenticate(key, audit=audit).name, agent_key_id)
        try:
            return self.keys.authenticate(key)
        except Unauthenticated as refused:
            if audit:
                with self.engine.begin() as conn:
                    record(
                        conn,
                        f"key:{refused.fields['key_id']}",
                        "auth.key",
                        "person:?",
                        decision="denied",
                        detail={"reason": str(refused.fields["reason"])},
                    )
            raise

    def operator(self) -> Identity:
        """Who runs this process's operator commands: the person whose key is in `settings.key` (PODIUM_KEY), else
        the one `podium init` stored for the local command line (`settings.key_file`). An agent's key is refused:
        agents act through the governor, never as operators."""
        key = self.settings.operator_key()
        if key is None:
            raise Unauthenticated(
                f"no key: acting needs one. Set PODIUM_KEY (or --key), or on a new home run `podium init --admin "
                f"EMAIL`, which stores the admin's key in {self.settings.key_file}.",
                reason="no key",
            )
        identity = self.authenticate(key)
        if identity.kind != "person":
            raise Unauthenticated(
                f"{identity.actor}'s key is an agent's: operator commands take a person's key (podium keys issue).",
                reason="an agent's key",
            )
        return identity

    def kill(self, scope: str, *, by: Identity, reason: str = "") -> KillReport:
        """Halt everything `scope` covers: `agent:<name>` (and its delegates), `workflow:<name>`, `team:<name>` or
        `all` (see docs/governance.md). Audited."""
        return self.kill_switch.kill(scope, by=by, reason=reason)

    def restore(self, scope: str, *, by: Identity, reason: str = "") -> None:
        """Lift the kill on `scope`, deliberately and audited."""
        self.kill_switch.restore(scope, by=by, reason=reason)


def _require_sqlite_file(url: str) -> None:
    """Refuse to read a SQLite database that does not exist (making the engine would create it)."""
    parsed = sa.engine.make_url(url)
    in_a_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if in_a_file and not Path(str(parsed.database)).exists():
        raise UsageError(_no_database(url))


def _no_database(url: str) -> str:
    return (
        f"no podium database at {safe_url(url)}: `podium init --admin EMAIL` makes one, or point --home or "
        "PODIUM_DATABASE_URL at yours."
    )


def _is_mcp_server(tool: object) -> bool:
    """Whether an App's tool is an MCP server (checked without loading the MCP client for apps that have none)."""
    import sys

    module = sys.modules.get("podium.tools._mcp")
    return module is not None and isinstance(tool, module.MCPServer)


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


def connect(settings: Settings | None = None) -> Podium:
    """Open podium's database for inspection and control. See `Podium.connect`."""
    return Podium.connect(settings)


def launch(settings: Settings | None = None, app: App | None = None) -> Podium:
    """Launch podium in this process. See `Podium.launch`."""
    return Podium.launch(settings, app)
