"""Settings: one explicit object, read from `PODIUM_*` environment variables or passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from podium._version import __version__
from podium.errors import ConfigurationError


class Settings(BaseSettings):
    """Everything a podium process needs to know about its environment.

    Build one with keyword arguments in code and tests, or let it read `PODIUM_DATABASE_URL`, `PODIUM_HOME`
    and friends from the environment in the CLI.
    """

    model_config = SettingsConfigDict(env_prefix="PODIUM_", frozen=True, extra="forbid")

    home: Path = Field(default=Path(".podium"), description="Where podium keeps its SQLite file and models.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Unset: a SQLite file in `home`. `postgresql://…` switches to scale-out.",
    )
    application_version: str = Field(
        default=f"podium-{__version__}",
        description=(
            "Recorded on every run; a process only recovers runs of its own version. Bump it when a "
            "workflow's steps change incompatibly, never by accident."
        ),
    )
    executor_id: str | None = Field(
        default=None,
        description="This process's executor id. Unset: the first free slot `<host>-<n>` (docs/architecture.md).",
    )
    local_compute_usd_per_hour: float = Field(
        default=0.085,
        ge=0,
        description="What an hour of this machine's CPU costs; local model calls are costed at this rate.",
    )
    retrain_after: int = Field(
        default=50,
        ge=1,
        description="Retrain a classifier podium trained once this many labels from reviews have arrived since its "
        "last training (checked once a minute by `podium worker`, or now by `podium models learn`).",
    )
    review_usd_per_hour: float = Field(
        default=60.0,
        ge=0,
        description="The loaded cost of an hour of a reviewer's time; review minutes are costed at this rate.",
    )
    config: Path | None = Field(
        default=None,
        description="A podium.toml declaring remote models and routing (docs/routing.md). Unset: ./podium.toml "
        "if there is one.",
    )

    policies: Path | None = Field(
        default=None,
        description="A folder of Cedar policies (*.cedar) added to podium's baseline (docs/governance.md). Unset: "
        "./policies if there is one.",
    )
    models_dir: Path | None = Field(
        default=None,
        description="Where podium keeps the models it trains, each file named by its sha256; the database records "
        "the digest. Unset: `home`/models. Workers on other machines need the same files: point it at a shared "
        "folder, or copy the files there.",
    )
    audit_key: Path | None = Field(
        default=None,
        description="The Ed25519 key that signs the audit log's tree heads (created on first use). Unset: "
        "`home`/audit-signing-key.pem. Keep it out of the database and back it up.",
    )
    audit_witnesses: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Where signed tree heads are published, outside the database, comma-separated: folders and "
        "http(s):// witnesses (docs/governance.md). Unset: the folder `<home>-witness` beside `home`.",
    )

    key: SecretStr | None = Field(
        default=None,
        description="The key this process acts with (a person's, from `podium keys issue`). Unset: the key "
        "`podium init` stored in `home`/operator.key, if any.",
    )

    @field_validator("audit_witnesses", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value

    @property
    def policies_dir(self) -> Path | None:
        if self.policies is not None:
            return self.policies
        default = Path("policies")
        return default if default.is_dir() else None

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or self.home / "models"

    @property
    def audit_key_file(self) -> Path:
        return self.audit_key or self.home / "audit-signing-key.pem"

    @property
    def audit_witness_specs(self) -> tuple[str, ...]:
        """The configured witnesses, or a folder beside `home` (not in it: whoever can replace what `home` holds,
        podium.db included, must not also rewrite what witnesses the log)."""
        return self.audit_witnesses or (str(self.home.parent / f"{self.home.name}-witness"),)

    @property
    def config_file(self) -> Path | None:
        if self.config is not None:
            return self.config
        default = Path("podium.toml")
        return default if default.is_file() else None

    @property
    def key_file(self) -> Path:
        """Where `podium init` stores the first admin's key for the local command line (owner-only)."""
        return self.home / "operator.key"

    def operator_key(self) -> str | None:
        """The key to act with: `key` if set, else the stored one; None if neither."""
        if self.key is not None:
            return self.key.get_secret_value().strip() or None
        try:
            return self.key_file.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        except OSError as exc:
            message = f"cannot read the stored key {self.key_file}: {exc.strerror}. Set PODIUM_KEY instead."
            raise ConfigurationError(message) from None

    @property
    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'podium.db').as_posix()}"
