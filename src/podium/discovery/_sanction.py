"""Sanction a service seen in the logs: make the governed alternative real for the people who use it.

`podium discover sanction chatgpt` does four things, each the way podium already does it by hand, so that none is
new machinery to trust:

1. a gateway alias (`[gateway.aliases]` in podium.toml) to models podium serves that can stand in for the service
   (its catalogue `equivalent`, the strongest tier declared, or `--model`), and the service added to `[discovery]
   sanctioned`; written with tomlkit, so the file keeps its comments and layout;
2. a Cedar policy (`policies/sanctioned-<service>.cedar`) that lets the people seen using it call those models;
3. a key for each of them (`podium keys issue`, audited), unless they hold a live one from a sanction already;
   someone missing from the directory is added with their department as their team;
4. a file per person (owner-only) with the base URL and key for the openai and anthropic SDKs and the environment.

Only an admin sanctions (Cedar `discovery.sanction`), and the sanction is one audit entry beside the entries of
the directory changes and keys it made, written whether it finished or stopped partway, saying what it did. Running
it again changes nothing it did already and says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from podium._bounds import check_name
from podium._tiers import TIER_RANKS
from podium.discovery._catalogue import Service
from podium.discovery._store import users_of
from podium.errors import UsageError
from podium.models import ModelConfig
from podium.policy import PolicySet, person_entity, scope_entity

if TYPE_CHECKING:
    import tomlkit.items

    from podium._runtime import Podium
    from podium.policy import Identity

SANCTION = "sanction"  # a key issued by a sanction says so: its purpose is "sanction:<service>"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # a service id or an alias, as a file name and a Cedar id take it
_PSEUDONYM = re.compile(r"u-[0-9a-f]{20}")  # what `podium discover --pseudonymise` makes of a user
_SAFE_FILE = re.compile(r"[^A-Za-z0-9@._-]")
CHAT_KINDS = frozenset({"chat", "code", "assistant", "agent", "search", "writing", "text", "embeddings"})


@dataclass(frozen=True)
class SeenUser:
    """Someone the logs show using the service: a person, a pseudonym or an address, and their department."""

    user: str
    department: str | None


@dataclass(frozen=True)
class Keyed:
    """A person the sanction reaches: whether it added them to the directory, their key, their instructions."""

    person: str
    added: bool
    key_id: str
    new_key: bool  # False: they hold a live key from a sanction already, and keep it
    instructions: Path | None  # None: a file from an earlier sanction is there already, left as it is


@dataclass(frozen=True)
class Sanctioned:
    """What a sanction did."""

    service: str
    alias: str
    models: tuple[str, ...]
    alias_existed: bool  # podium.toml named the alias already: its models were kept
    config: Path
    policy: Path | None  # None: nobody seen could be given a key, so no policy was written
    people: list[Keyed]
    not_people: list[tuple[str, str]]  # (user as the logs name them, why no key)


@dataclass
class _Done:
    """What a sanction has done so far: what its audit entry says, finished or not."""

    config: Path | None = None
    policy: Path | None = None
    people: list[Keyed] = field(default_factory=list)

    def detail(self, alias: str, models: Sequence[str], not_people: int, *, stopped: str) -> dict[str, str]:
        return {
            "alias": alias if self.config else "",  # the KPI counts the alias once podium.toml names it
            "models": ", ".join(models),
            "config": str(self.config or ""),
            "policy": str(self.policy or ""),
            "keys": json.dumps({k.person: k.key_id for k in self.people if k.new_key}, sort_keys=True),
            "people_added": str(sum(k.added for k in self.people)),
            "instructions": str(sum(k.instructions is not None for k in self.people)),
            "not_people": str(not_people),
            "stopped": stopped,  # "": it finished; else where it stopped and why
        }


def seen_users(engine: sa.Engine, service: str) -> list[SeenUser]:
    """Everyone the stored logs show using `service` (a catalogue id), with their department."""
    return [SeenUser(u.user, u.department) for u in users_of(engine, service)]


def sanction(
    pod: Podium,
    service: Service,
    seen: Sequence[SeenUser],
    *,
    by: Identity,
    instructions: Path,
    gateway_url: str,
    alias: str | None = None,
    models: Sequence[str] = (),
) -> Sanctioned:
    """Sanction `service` for the people in `seen` (see the module's docstring). Everything that can be checked is
    checked before anything is written: `by`'s right to sanction, the alias, the models, the new podium.toml and
    policy (loaded with the others, as `podium serve` will), the instructions folder, and, for each person, that
    Cedar lets `by` add them and issue them a key. What can still fail after that (a disk, the database) stops the
    sanction where it is; what it did is audited all the same: each person added and key issued has its own entry
    as it happens, and the `discovery.sanction` entry says what was written, and where and why it stopped."""
    authorizer = pod.agents.authorizer
    resource = scope_entity(f"service:{service.id}")
    authorizer.check(by, "discovery.sanction", resource)  # refused before anything is read or written; audited
    alias = _name(alias or service.id, "--alias")
    if service.blocked:
        raise UsageError(
            f"{service.id} is blocked in podium.toml ([discovery] blocked): remove it there first if it is now to be "
            "sanctioned."
        )
    base = _gateway_url(gateway_url)
    config_path = pod.settings.config_file or Path("podium.toml")
    config_text, chosen, existed = _edited_config(pod, config_path, service, alias, models)
    people, not_people = _people(pod, seen)
    policy_dir = pod.settings.policies_dir or Path("policies")
    policy_path = policy_dir / f"sanctioned-{service.id}.cedar"
    policy_text = _policy(service, alias, chosen, sorted({p for p, _ in people})) if people else None
    if policy_text is not None:
        _check_policies(policy_dir, policy_path.name, policy_text)
    _check_people(pod, people, by)
    _folder(instructions)

    done, step = _Done(), f"writing {config_path}"
    try:
        _write(config_path, config_text)
        done.config = config_path
        if policy_text is not None:
            step = f"writing {policy_path}"
            policy_dir.mkdir(parents=True, exist_ok=True)
            _write(policy_path, policy_text)
            done.policy = policy_path
        for person, department in people:
            step = f"keying {person[:200]!r}"
            issued, secret = _key(pod, person, department, service, by)
            done.people.append(Keyed(issued.person, issued.added, issued.key_id, issued.new_key, None))
            written = _instructions(issued, secret, service, alias, base, instructions)
            done.people[-1] = dataclasses.replace(done.people[-1], instructions=written)
        step = ""
    except BaseException as exc:
        step = f"stopped {step}: {type(exc).__name__}: {str(exc)[:300]}"
        raise
    finally:
        detail = done.detail(alias, chosen, len(not_people), stopped=step)
        with authorizer.act(by, "discovery.sanction", resource, detail=detail):
            pass
    return Sanctioned(service.id, alias, chosen, existed, config_path, done.policy, done.people, not_people)


# -- the alias, and which models stand in for the service ----------------------------------------------------------


def _served(pod: Podium) -> dict[str, str]:
    """The chat models podium serves at the gateway (declared in podium.toml, or packaged), with their tiers."""
    catalog = pod.models
    return {
        name: catalog.entry(name).tier
        for name in catalog.names()
        if name in pod.config.models or catalog.entry(name).packaged
    }


def choose_models(service: Service, served: dict[str, str], requested: Sequence[str] = ()) -> tuple[str, ...]:
    """The models an alias for `service` names: `requested` if given (each one podium serves), else every model of
    the strongest tier served, when the service's `equivalent` is a kind of work a chat model does."""
    if requested:
        unknown = [m for m in requested if m not in served]
        if unknown:
            raise UsageError(
                f"--model {unknown[0]!r} is not a model podium serves ({', '.join(sorted(served))}); declare it under "
                "[models.<name>] in podium.toml, or name one of those."
            )
        return tuple(dict.fromkeys(requested))
    kind = (service.equivalent or "").strip().lower()
    if kind not in CHAT_KINDS:
        what = f"its equivalent is {kind!r}" if kind else "the catalogue names no equivalent for it"
        raise UsageError(
            f"no model podium serves stands in for {service.id}: {what}, and the gateway serves chat and embedding "
            "models. Name the models that should with --model NAME (declared under [models.<name>] in podium.toml)."
        )
    best = max(TIER_RANKS[tier] for tier in served.values())
    return tuple(name for name, tier in served.items() if TIER_RANKS[tier] == best)


def _edited_config(
    pod: Podium, path: Path, service: Service, alias: str, requested: Sequence[str]
) -> tuple[str, tuple[str, ...], bool]:
    """podium.toml with the alias and the service sanctioned (its comments kept), the alias's models, and whether
    the alias was there already. An alias that exists is kept as it is, unless --model asks for other models."""
    import tomlkit

    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        document = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise UsageError(f"cannot read {path} to add the alias: {exc}. Fix the file and run again.") from None
    aliases = _table(_table(document, "gateway"), "aliases")
    existing = aliases.get(alias)
    if existing is not None:
        kept = tuple(str(m) for m in existing)
        if requested and tuple(requested) != kept:
            raise UsageError(
                f"{path} names the alias {alias!r} already, for {', '.join(kept)}: give another --alias, or edit "
                f"[gateway.aliases] {alias} yourself."
            )
        chosen = kept
    else:
        chosen = choose_models(service, _served(pod), requested)
        aliases[alias] = chosen
    discovery = _table(document, "discovery")
    sanctioned = discovery.setdefault("sanctioned", tomlkit.array())
    if service.id not in [str(s) for s in sanctioned]:
        sanctioned.append(service.id)
    new = tomlkit.dumps(document)
    _check_config(path, new)
    return new, chosen, existing is not None


def _table(parent: tomlkit.items.Table | tomlkit.TOMLDocument, key: str) -> tomlkit.items.Table:
    import tomlkit

    found = parent.setdefault(key, tomlkit.table())
    if not hasattr(found, "setdefault"):
        raise UsageError(f"podium.toml's {key} is not a table; make it one ([{key}]) and run again.")
    return found  # type: ignore[no-any-return]


def _check_config(path: Path, text: str) -> None:
    """Refuse a podium.toml podium would not start with, before it replaces the one that works."""
    with tempfile.TemporaryDirectory() as folder:
        trial = Path(folder) / "podium.toml"
        trial.write_text(text, encoding="utf-8")
        ModelConfig.load(trial)


# -- the policy ------------------------------------------------------------------------------------------------


def _policy(service: Service, alias: str, models: Sequence[str], people: Sequence[str]) -> str:
    names = ", ".join(_cedar_string(p) for p in people)
    served = ", ".join(_cedar_string(m) for m in models)
    about = " ".join(f"{service.name} ({service.vendor})".split())[:120]
    return (
        f"// Written by `podium discover sanction {service.id}`, and again each time it runs: the people seen using\n"
        f"// {_comment(about)} may call the models of the gateway alias {alias!r}. Remove the file to withdraw it.\n"
        f'@id("sanctioned-{service.id}")\n'
        'permit (principal is Person, action == Action::"model.call", resource is Model)\n'
        f"when {{ [{names}].contains(principal.name) && [{served}].contains(resource.name) }};\n"
    )


def _cedar_string(text: str) -> str:
    """`text` as a Cedar string literal: one line (checked), its quotes and backslashes escaped."""
    check_name(text, "a name in a policy")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def _check_policies(folder: Path, name: str, text: str) -> None:
    """Load podium's baseline, the project's policies and the new one together, as `podium serve` will."""
    with tempfile.TemporaryDirectory() as trial:
        for existing in sorted(folder.glob("*.cedar")) if folder.is_dir() else ():
            if existing.name != name:
                shutil.copy(existing, Path(trial) / existing.name)
        (Path(trial) / name).write_text(text, encoding="utf-8")
        PolicySet.load(Path(trial))


# -- people and their keys -------------------------------------------------------------------------------------


def _people(pod: Podium, seen: Iterable[SeenUser]) -> tuple[list[tuple[str, str | None]], list[tuple[str, str]]]:
    """The people to give keys to (with the department to add them under if the directory lacks them), and the
    users who are not people podium can give a key: addresses, pseudonyms, names that are not names, and admins
    (a key acts as its person: a log line naming an admin must not mint an admin's credential)."""
    people: dict[str, str | None] = {}
    not_people: list[tuple[str, str]] = []
    for user in seen:
        why = _not_a_person(user.user)
        known = pod.people.find(user.user) if why is None else None
        if known is not None and "admins" in known.teams:
            why = "an admin: a key for them acts as an admin, so a log never mints one (`podium keys issue` by hand)"
        elif why is None and known is None and user.department:
            why = _bad_department(user.department)
        if why is not None:
            not_people.append((user.user[:200], why))
        elif user.user not in people or people[user.user] is None:
            people[user.user] = user.department
    return sorted(people.items()), not_people


def _not_a_person(user: str) -> str | None:
    try:
        ipaddress.ip_address(user)
        return "an address: map addresses to people with `podium discover --users FILE` and run it again"
    except ValueError:
        pass
    if _PSEUDONYM.fullmatch(user):
        return "a pseudonym: run `podium discover` without --pseudonymise to know who, or issue keys by hand"
    try:
        check_name(user, "a person")
    except UsageError:
        return "not a person's name (control characters, or too long)"
    if ":" in user or not user.strip() or user == "owner" or user != user.strip():
        return "not a person's name (it would name a team or an agent)"
    return None


def _bad_department(department: str) -> str | None:
    """Why `department` cannot become the team of a person added from the logs: a log or an address book names no
    admin (team admins governs podium), and a team's name has no ':'."""
    try:
        team = check_name(department, "a department").strip().removeprefix("team:")
    except UsageError:
        return "their department is not a team name (control characters, or too long)"
    if team == "admins":
        return "their department is 'admins', which in podium governs it: add them yourself (`podium people add`)"
    if ":" in team:
        return f"their department {department[:60]!r} is no team name (it has a ':')"
    return None


def _check_people(pod: Podium, people: Sequence[tuple[str, str | None]], by: Identity) -> None:
    """Cedar's decisions on adding each person (if the directory lacks them) and issuing them a key, made before
    anything is written, so a person `by` may not key (or a name Cedar could not take) stops the sanction whole.
    `_people` left out admins, so neither touches them."""
    authorizer, context = pod.agents.authorizer, {"touches_admins": False}
    for person, department in people:
        known = pod.people.find(person)
        entity = person_entity(person, known.teams if known else [department] if department else [])
        if known is None:
            authorizer.check(by, "people.change", entity, context, resource_name=f"person:{person}")
        authorizer.check(by, "keys.issue", entity, context, resource_name=f"person:{person}")


@dataclass(frozen=True)
class _Issued:
    person: str
    added: bool
    key_id: str
    new_key: bool


def _key(pod: Podium, person: str, department: str | None, service: Service, by: Identity) -> tuple[_Issued, str]:
    """Add `person` if the directory lacks them, and issue them a key unless a sanction gave them a live one
    already; returns the key's secret ("" if none was issued), which goes into their file and nowhere else."""
    added = False
    if pod.people.find(person) is None:
        pod.people.add(person, teams=[department] if department else [], by=by)
        added = True
    held = [k for k in pod.keys.list(person) if k.state() == "live" and f" for {SANCTION}:" in k.created_by]
    if held:
        return _Issued(person, added, held[-1].id, False), ""
    issued = pod.keys.issue(person, by=by, purpose=f"{SANCTION}:{service.id}")
    return _Issued(person, added, issued.id, True), issued.key


# -- their instructions ----------------------------------------------------------------------------------------


def _instructions(keyed: _Issued, secret: str, service: Service, alias: str, base: str, folder: Path) -> Path | None:
    """Write the person's file (owner-only): with their new key, or, when they keep an earlier one, pointing to it
    by its id. A file there already is replaced only by one with a new key: it may hold the key they keep."""
    path = folder / f"{_file_name(keyed.person)}.{service.id}.txt"
    if not keyed.new_key and path.exists():
        return None
    key = secret or "$PODIUM_KEY"
    if secret:
        about_key = f"Your key (it acts as you; keep it secret, podium shows it only here): {secret}"
    else:
        about_key = (
            f"Use the key a sanction gave you before (key id {keyed.key_id}) where $PODIUM_KEY appears below; "
            "if you lost it, ask an admin to revoke it and sanction again."
        )
    name = " ".join(service.name.split())[:120]
    text = f"""{_comment(name)} at work: the governed way, through podium's gateway

{_comment(name)} is now offered through your organisation's AI gateway as the model "{alias}". Requests
through it are authorised, costed and audited, and guardrails keep secrets and personal data in.

{about_key}

Tools built on the openai SDK read the environment:
  export OPENAI_BASE_URL={base}/v1
  export OPENAI_API_KEY={key}
Tools built on the anthropic SDK (and Claude Code):
  export ANTHROPIC_BASE_URL={base}
  export ANTHROPIC_API_KEY={key}

Python, the openai SDK:
  from openai import OpenAI
  client = OpenAI(base_url="{base}/v1", api_key="{key}")
  reply = client.chat.completions.create(model="{alias}", messages=[{{"role": "user", "content": "Hello"}}])

Python, the anthropic SDK:
  import anthropic
  client = anthropic.Anthropic(base_url="{base}", api_key="{key}")
  reply = client.messages.create(model="{alias}", max_tokens=512, messages=[{{"role": "user", "content": "Hello"}}])
"""
    _write(path, text, private=True)
    return path


def _file_name(person: str) -> str:
    """A file name for `person` that stays in the folder: what is not a letter, digit, '@', '.', '_' or '-'
    becomes '_', and a name changed so gets a digest of the original, so two people never share a file."""
    safe = _SAFE_FILE.sub("_", person).lstrip(".")[:80] or "person"
    if safe != person:
        safe += "-" + hashlib.sha256(person.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return safe


def _folder(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make --instructions {path}: {exc.strerror}; give a folder you may write.") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"cannot write into --instructions {path}; give a folder you may write.")


def _gateway_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/-]*)?", url):
        raise UsageError(
            f"--gateway-url {url[:80]!r} is not the URL people reach `podium serve` at: give http(s)://HOST[:PORT]."
        )
    return url.removesuffix("/v1")


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise UsageError(
            f"{what} {value[:80]!r} is not a name podium writes into podium.toml and a policy: use lower-case "
            "letters, digits, '.', '_' and '-' (at most 64)."
        )
    return value


def _write(path: Path, text: str, *, private: bool = False) -> None:
    """Replace `path` with `text` at once (a reader sees the old file or the new, never half), owner-only if
    `private` (from the moment it exists)."""
    temporary = None
    try:
        mode = 0o600 if private else (path.stat().st_mode & 0o777 if path.exists() else 0o644)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # made owner-only
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror}; fix its folder's permissions and run again.") from None
