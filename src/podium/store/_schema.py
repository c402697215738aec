"""podium's tables as SQLAlchemy Core objects, for queries.

The database itself is built by the numbered migrations in `_migrations.py`; a test checks that the two agree.
Every table is prefixed `podium_` so it can live beside DBOS's tables in one SQLite file or one PostgreSQL
database. Times are epoch seconds; money is integer nano-dollars (a 1 ms local call costs ~24 n$), so sums are exact.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "podium_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

agents = sa.Table(
    "podium_agents",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("models", sa.Text, nullable=False),  # JSON list
    sa.Column("tools", sa.Text, nullable=False),  # JSON list
    sa.Column("status", sa.Text, nullable=False),  # active | suspended | retired
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("team", sa.Text, nullable=False, server_default=""),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("purpose", sa.Text, nullable=False, server_default=""),
    sa.Column("tier_ceiling", sa.Text, nullable=False, server_default=""),  # '' = no ceiling
    sa.Column("data_scopes", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("delegated_by", sa.Text),  # the agent whose permissions this one's are a subset of
    sa.Column("created_at", sa.Float, nullable=False, server_default="0"),
    # What people decided, by kind ({"tools": ["refund"], ...}): a relaunch keeps what a person granted and never
    # re-grants what a person withheld (revoked), whatever the code declares.
    sa.Column("granted", sa.Text, nullable=False, server_default="{}"),
    sa.Column("withheld", sa.Text, nullable=False, server_default="{}"),
)

agent_keys = sa.Table(
    "podium_agent_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("agent", sa.Text, nullable=False),
    sa.Column("secret_sha256", sa.Text, nullable=False),  # the key itself is shown once and never stored
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("revoked_by", sa.Text),
    sa.Index("podium_agent_keys_agent", "agent"),
)

kills = sa.Table(
    "podium_kills",
    metadata,
    # agent:<name> | workflow:<name> | team:<name> | person:<name> | key:<id> | all
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("killed_by", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("killed_at", sa.Float, nullable=False),
)

kill_epoch = sa.Table(
    "podium_kill_epoch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
)

ledger = sa.Table(
    "podium_ledger",
    metadata,
    sa.Column("call_key", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text),
    sa.Column("step_id", sa.Integer),
    sa.Column("agent", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # model | tool
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("compute_seconds", sa.Float, nullable=False),
    sa.Column("cost_nano_usd", sa.BigInteger, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("wall_seconds", sa.Float, nullable=False, server_default="0"),
    sa.Column("wasted", sa.Integer, nullable=False, server_default="0"),  # 1: a failed attempt, thrown away
    sa.Column("workflow", sa.Text),
    sa.Column("team", sa.Text),
    sa.Column("api_key", sa.Text),
    sa.Column("person", sa.Text),  # a person's own call at the gateway (`agent` is "" then)
    sa.Column("cached_input_tokens", sa.BigInteger, nullable=False, server_default="0"),  # within input_tokens
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False, server_default="0"),  # within input_tokens
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False, server_default="0"),  # within output_tokens
)

rate_windows = sa.Table(
    "podium_rate_windows",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),  # key:<id> | team:<name>
    sa.Column("window", sa.BigInteger, primary_key=True),  # the minute: unix time // 60
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
)

discovery_runs = sa.Table(
    "podium_discovery_runs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("files", sa.Text, nullable=False),  # JSON list of the sha256 of the files this run ingested
    sa.Column("skipped_lines", sa.BigInteger, nullable=False),
    sa.Index("podium_discovery_runs_at", "at"),
)

discovery_files = sa.Table(
    "podium_discovery_files",
    metadata,
    sa.Column("sha256", sa.Text, primary_key=True),  # of its content, decompressed: the same log is ingested once
    sa.Column("path", sa.Text, nullable=False),  # as it was given, the first time
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("lines", sa.BigInteger, nullable=False),
    sa.Column("skipped", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("ingested_at", sa.Float, nullable=False),
    # its content's length and the sha256 of its first min(size, 64 KiB) bytes: finds the earlier ingest a log that
    # grew continues (NULL for files ingested before migration 16: never continued)
    sa.Column("size", sa.BigInteger),
    sa.Column("head_sha256", sa.Text),
    sa.Index("podium_discovery_files_head", "head_sha256"),
)

# What one run's files showed, per user, department, service, host and day. A run's files are read together (one
# flow's evidence is reconciled across them), so a row belongs to the run, and each file to exactly one run.
discovery_sightings = sa.Table(
    "podium_discovery_sightings",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("user", sa.Text, primary_key=True),  # person, pseudonym or client address
    sa.Column("department", sa.Text, primary_key=True),  # '' when none is known
    sa.Column("service", sa.Text, primary_key=True),  # catalogue id
    sa.Column("host", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),  # ISO date, UTC
    sa.Column("requests", sa.BigInteger, nullable=False),  # flows or proxy requests; lookups for DNS-only evidence
    sa.Column("bytes_up", sa.BigInteger),  # NULL: the evidence carries no bytes (DNS), never 0
    sa.Column("bytes_down", sa.BigInteger),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Index("podium_discovery_sightings_service", "service", "day"),
    sa.Index("podium_discovery_sightings_user", "user", "service"),
)

budgets = sa.Table(
    "podium_budgets",
    metadata,
    # agent:<name> | workflow:<name> | team:<name> | key:<id> | person:<name> | model:<name>
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("limit_nano_usd", sa.BigInteger, nullable=False),
    sa.Column("reserved_nano_usd", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("spent_nano_usd", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("on_exhausted", sa.Text, nullable=False),  # stop | review
    sa.Column("updated_at", sa.Float, nullable=False),
)

reservations = sa.Table(
    "podium_reservations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("call_key", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON list
    sa.Column("amount_nano_usd", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # held | committed | released
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("settled_at", sa.Float),
    sa.Index(
        "podium_reservations_held",
        "call_key",
        unique=True,
        sqlite_where=sa.text("status = 'held'"),
        postgresql_where=sa.text("status = 'held'"),
    ),
)

audit_log = sa.Table(
    "podium_audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True),  # leaf index + 1
    sa.Column("call_key", sa.Text, nullable=False, unique=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("policies", sa.Text, nullable=False),  # JSON list of the policy ids that decided
    sa.Column("run_id", sa.Text),
    sa.Column("step_id", sa.Integer),
    sa.Column("input_digest", sa.Text, nullable=False),
    sa.Column("output_digest", sa.Text, nullable=False),
    sa.Column("cost_nano_usd", sa.BigInteger, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # canonical JSON
    sa.Column("leaf_hash", sa.Text, nullable=False),  # RFC 6962 leaf hash of the canonical entry, hex
    sa.Index("podium_audit_log_run", "run_id"),
    sa.Index("podium_audit_log_actor", "actor", "seq"),
)

audit_size = sa.Table(
    "podium_audit_size",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),  # bumped before appending: serialises appenders
)

tree_heads = sa.Table(
    "podium_tree_heads",
    metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True),
    sa.Column("root_hash", sa.Text, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("frontier", sa.Text, nullable=False),  # the tree's right edge, so the next head reads only new leaves
)

outbox = sa.Table(
    "podium_outbox",
    metadata,
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

reviews = sa.Table(
    "podium_reviews",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("agent", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),  # canonical JSON of the proposed action
    sa.Column("action_digest", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending | approved | rejected | expired
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deadline_at", sa.Float, nullable=False),
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", sa.Float),
    sa.Column("rationale", sa.Text),
    sa.Column("workflow", sa.Text),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of reason codes; `reason` is the first
    sa.Column("facts", sa.Text, nullable=False),  # JSON: what the run had assessed when the rule fired
    sa.Column("value_usd", sa.Float),
    sa.Column("action_schema", sa.Text, nullable=False),  # JSON schema an edit of the action must satisfy
    sa.Column("judgement", sa.Text),  # JSON: a model's label the reviewer may correct (it becomes training data)
    sa.Column("approved_action", sa.Text),  # the action as approved: the proposed one, or the reviewer's edit
    sa.Column("approved_digest", sa.Text),
    sa.Column("consumed_by", sa.Text),  # the governed call that performed the approved action (once)
    sa.Column("chain", sa.Text, nullable=False),  # JSON list: who decides at each escalation level
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("level_seconds", sa.Float, nullable=False),
    sa.Column("level_deadline_at", sa.Float, nullable=False),
    sa.Column("on_expiry", sa.Text, nullable=False),  # reject | hold
    sa.Column("assignee", sa.Text),  # set by a reassignment: decides in place of the chain's current level
    sa.Column("claimed_by", sa.Text),
    sa.Column("minutes", sa.Float),
    sa.Column("label", sa.Text),  # the label the reviewer gave the judgement (confirmed or corrected)
    sa.Index("podium_reviews_open", "status", "created_at"),
    sa.Index("podium_reviews_run", "run_id"),
)

people = sa.Table(
    "podium_people",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("teams", sa.Text, nullable=False),  # JSON list
    sa.Column("usd_per_hour", sa.Float),  # loaded rate; NULL: PODIUM_REVIEW_USD_PER_HOUR
    sa.Column("updated_at", sa.Float, nullable=False),
)

person_keys = sa.Table(
    "podium_person_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("person", sa.Text, nullable=False),
    sa.Column("secret_sha256", sa.Text, nullable=False),  # the key itself is shown once and never stored
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float),  # NULL: until revoked
    sa.Column("revoked_at", sa.Float),
    sa.Column("revoked_by", sa.Text),
    sa.Index("podium_person_keys_person", "person"),
)

labels = sa.Table(
    "podium_labels",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("predicted", sa.Text),  # what the model said, for corrections
    sa.Column("source", sa.Text, nullable=False),  # "training" or "review:<id>"
    sa.Column("labelled_by", sa.Text),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("podium_labels_model", "model", "at"),
)

model_files = sa.Table(
    "podium_model_files",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("sha256", sa.Text, nullable=False),  # the file is <sha256>.npz in the models folder
    sa.Column("format", sa.Text, nullable=False),  # "podium-text-classifier/1"; "pickle": never loaded, retrain
    sa.Column("recorded_at", sa.Float, nullable=False),
)

run_stops = sa.Table(
    "podium_run_stops",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("stopped_by", sa.Text, nullable=False),
    sa.Column("stopped_at", sa.Float, nullable=False),
)

workflows = sa.Table(
    "podium_workflows",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("registered_at", sa.Float, nullable=False),
    sa.Column("parameters", sa.Text),  # JSON: name, schema, required of each; NULL: declared before podium knew
)

routed = sa.Table(
    "podium_routed",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("router", sa.Text, nullable=False),  # agent:candidate|candidate…
    sa.Column("run_id", sa.Text),
    sa.Column("model", sa.Text, nullable=False),  # the model that answered
    sa.Column("features", sa.Text, nullable=False),  # JSON list of hashed feature indices (never the text)
    sa.Column("success", sa.Integer),  # NULL until the run reports an outcome
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("shadow_of", sa.Text),  # a shadow answer: the id of the routed request it shadowed (NULL: served)
    sa.Column("agrees", sa.Integer),  # a shadow answer: 1 if it matched the served one (then shares its outcome)
    sa.Index("podium_routed_run", "run_id", "success"),
    sa.Index("podium_routed_router", "router", "success"),
)

flow_records = sa.Table(
    "podium_flow_records",
    metadata,
    sa.Column("call_key", sa.Text, primary_key=True),  # the governed call that read it: a re-run records it once
    sa.Column("door_key", sa.Text, nullable=False),  # the run it was read in
    sa.Column("trusted", sa.Integer, nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON list of the data scopes it came from (confidentiality)
    sa.Column("source", sa.Text, nullable=False),  # "tool:<name>" or "model:<name>"
    sa.Column("content", sa.Text, nullable=False),  # the text read, as the agent saw it
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("podium_flow_records_door", "door_key", "at"),
)
