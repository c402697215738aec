"""`podium agents`, `podium policy`, `podium audit`, `podium kill` / `restore` and `podium governance`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from podium._tiers import TIER_PREFIX, Tier
from podium._time import format_time
from podium.cli._common import connected, console, err, settings, write_output
from podium.cli._display import AsJson, block, iso, literal, print_json, row, styled, table
from podium.cli._fields import agent_fields, budget_fields, entry_fields, report_fields
from podium.errors import UsageError

agents_app = typer.Typer(
    help="The agent registry: identities, accountable owners, permissions, keys, status.", no_args_is_help=True
)
policy_app = typer.Typer(help="Cedar policies: test them, and explain an audited decision.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The audit log: a Merkle tree with signed heads; list, prove, export, verify.", no_args_is_help=True
)
governance_app = typer.Typer(help="Accountability: who owns which agent, and what it did.", no_args_is_help=True)

Models = Annotated[list[str] | None, typer.Option("--model", help=f"A model name or {TIER_PREFIX}TIER (repeatable).")]
Tools = Annotated[list[str] | None, typer.Option("--tool", help="A tool name (repeatable).")]
Scopes = Annotated[list[str] | None, typer.Option("--data-scope", help="A data scope, TEAM/NAME (repeatable).")]


# -- agents --------------------------------------------------------------------------------------------------


@agents_app.command("add")
def agents_add(
    name: str,
    owner: Annotated[str, typer.Option(help="The person accountable for the agent (required).")],
    team: Annotated[str, typer.Option(help="The team it works for.")] = "",
    purpose: Annotated[str, typer.Option(help="What it is for, in a sentence.")] = "",
    display_name: Annotated[str, typer.Option(help="A human-friendly name.")] = "",
    model: Models = None,
    tool: Tools = None,
    data_scope: Scopes = None,
    tier_ceiling: Annotated[Tier | None, typer.Option(help="The highest model tier it may use.")] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="A budget for the agent's spend (stops it when spent).")
    ] = None,
) -> None:
    """Register an agent and print its API key (shown once: store it now); with --budget-usd, its budget too, in
    the same transaction."""
    with connected() as pod:
        record, key = pod.agents.add(
            name,
            owner=owner,
            by=pod.operator(),
            team=team,
            purpose=purpose,
            display_name=display_name,
            models=model or (),
            tools=tool or (),
            data_scopes=data_scope or (),
            tier_ceiling=tier_ceiling or "",
            budget_usd=budget_usd,
        )
    console.print(styled("Registered [bold]{}[/], owned by {}.", record.name, record.owner))
    console.print(styled("API key (shown once, podium keeps only its digest): [bold]{}[/]", key.secret))


@agents_app.command("list")
def agents_list(as_json: AsJson = False) -> None:
    """Every registered agent with its owner, team, permissions and status."""
    with connected(read=True) as pod:
        found = pod.agents.list()
    if as_json:
        print_json([agent_fields(a) for a in found])
        return
    shown = table("agent", "owner", "team", "status", "models", "tools", ids=["agent"])
    for a in found:
        owner = a.owner or Text("none", style="red")
        shown.add_row(*row(a.name, owner, a.team, a.status, ", ".join(a.models), ", ".join(a.tools)))
    console.print(shown if found else "No agents registered yet: `podium agents add` or launch an app that has some.")


@agents_app.command("show")
def agents_show(name: str, as_json: AsJson = False) -> None:
    """One agent: identity, permissions, keys, kills, and its latest audited actions."""
    from podium.cost import usd

    with connected(read=True) as pod:
        agent = pod.agents.get(name)
        keys = pod.agents.keys(name)
        recent = list(pod.audit.entries(actor=f"agent:{name}", after=max(0, pod.audit.size() - 5000)))[-10:]
        kills = [k for k in pod.kill_switch.active() if k.scope in (f"agent:{name}", f"team:{agent.team}", "all")]
        budget = next((b for b in pod.budgets.list() if b.scope == f"agent:{name}"), None)
    if as_json:
        print_json(
            {
                **agent_fields(agent),
                "kills": [k.scope for k in kills],
                "budget": budget_fields(budget) if budget else None,
                "keys": [{"id": k.id, "created_at": iso(k.created_at), "revoked_at": iso(k.revoked_at)} for k in keys],
                "recent_actions": [entry_fields(stored) for stored in recent],
            }
        )
        return
    shown = Table(show_header=False, title=literal(f"agent {agent.name}"), title_justify="left")
    shown.add_column(style="bold")
    shown.add_column()
    killed = styled(" [red](killed: {})[/]", ", ".join(k.scope for k in kills)) if kills else ""
    for label, value in (
        ("display name", agent.display_name or agent.name),
        ("purpose", agent.purpose or "-"),
        ("owner", agent.owner or Text("none: it cannot act", style="red")),
        ("team", agent.team or "-"),
        ("status", Text.assemble(literal(agent.status), killed)),
        ("models", ", ".join(agent.models) or "-"),
        ("tier ceiling", agent.tier_ceiling or "none"),
        ("tools", ", ".join(agent.tools) or "-"),
        ("data scopes", ", ".join(agent.data_scopes) or "-"),
        ("delegate of", agent.delegated_by or "-"),
        (
            "budget",
            f"${usd(budget.spent_nano_usd):.4f} spent of ${usd(budget.limit_nano_usd):.2f} "
            f"({budget.on_exhausted} when spent)"
            if budget
            else "none",
        ),
        ("registered", format_time(agent.created_at)),
        (
            "keys",
            "; ".join(
                f"{k.id} {'revoked ' + format_time(k.revoked_at) if k.revoked_at else 'live'}"
                f" (issued {format_time(k.created_at)})"
                for k in keys
            )
            or "none",
        ),
    ):
        shown.add_row(*row(label, value))
    console.print(shown)
    if recent:
        actions = table("#", "when", "action", "resource", "decision", "policies", ids=["#"], title="latest actions")
        for stored in recent:
            e = stored.entry
            actions.add_row(
                *row(stored.seq, format_time(e.at), e.action, e.resource, e.decision, ", ".join(e.policies))
            )
        console.print(actions)


@agents_app.command("grant")
def agents_grant(name: str, model: Models = None, tool: Tools = None, data_scope: Scopes = None) -> None:
    """Add models, tools or data scopes to an agent's permissions (a person's decision; audited)."""
    with connected() as pod:
        record = pod.agents.grant(
            name, by=pod.operator(), models=model or (), tools=tool or (), data_scopes=data_scope or ()
        )
    console.print(
        styled("{}: models {}; tools {}", record.name, ", ".join(record.models) or "-", ", ".join(record.tools) or "-")
    )


@agents_app.command("revoke")
def agents_revoke(name: str, model: Models = None, tool: Tools = None, data_scope: Scopes = None) -> None:
    """Remove models, tools or data scopes from an agent's permissions (audited)."""
    with connected() as pod:
        record = pod.agents.revoke(
            name, by=pod.operator(), models=model or (), tools=tool or (), data_scopes=data_scope or ()
        )
    console.print(
        styled("{}: models {}; tools {}", record.name, ", ".join(record.models) or "-", ", ".join(record.tools) or "-")
    )


@agents_app.command("suspend")
def agents_suspend(name: str) -> None:
    """Stop an agent: the governor refuses its next model or tool call, in every process."""
    with connected() as pod:
        record = pod.agents.set_status(name, "suspended", by=pod.operator())
    console.print(styled("{}: {}", record.name, record.status))


@agents_app.command("resume")
def agents_resume(name: str) -> None:
    """Let a suspended agent act again."""
    with connected() as pod:
        record = pod.agents.set_status(name, "active", by=pod.operator())
    console.print(styled("{}: {}", record.name, record.status))


@agents_app.command("rotate-key")
def agents_rotate_key(name: str) -> None:
    """Revoke an agent's keys and print a new one (shown once)."""
    with connected() as pod:
        key = pod.agents.rotate_key(name, by=pod.operator())
    console.print(styled("New API key for {} (shown once; the old ones no longer work): [bold]{}[/]", name, key.secret))


@agents_app.command("retire")
def agents_retire(name: str) -> None:
    """Retire an agent for good: it never acts again and its keys are revoked."""
    with connected() as pod:
        record = pod.agents.retire(name, by=pod.operator())
    console.print(styled("{}: {}", record.name, record.status))


# -- kill switch ---------------------------------------------------------------------------------------------

Agent = Annotated[str | None, typer.Option("--agent", help="An agent (and its delegates).")]
Workflow = Annotated[str | None, typer.Option("--workflow", help="Every run of a workflow.")]
Team = Annotated[str | None, typer.Option("--team", help="Every agent and person of a team.")]
Person = Annotated[str | None, typer.Option("--person", help="A person's gateway requests (in flight too).")]
Key = Annotated[str | None, typer.Option("--key-id", help="One key's gateway requests, by key id (in flight too).")]
Everything = Annotated[bool, typer.Option("--all", help="Everything.")]
Note = Annotated[str, typer.Option(help="Why (recorded in the audit log).")]


def kill(
    agent: Agent = None,
    workflow: Workflow = None,
    team: Team = None,
    person: Person = None,
    key_id: Key = None,
    everything: Everything = False,
    note: Note = "",
) -> None:
    """Halt now: refuse every further action, stop side effects under way, revoke keys, cancel runs in flight."""
    from podium.governance import kill_scope

    scope = kill_scope(agent=agent, workflow=workflow, team=team, person=person, key=key_id, everything=everything)
    with connected() as pod:
        report = pod.kill(scope, by=pod.operator(), reason=note)
    console.print(
        styled(
            "[bold red]killed {}[/]: acknowledged in {} ms; {} key(s) revoked; {} run(s) in flight cancelled ({} s in "
            "all). Lift it deliberately with `podium restore`.",
            report.scope,
            f"{report.acknowledged_s * 1000:.0f}",
            report.keys_revoked,
            report.runs_cancelled,
            f"{report.total_s:.2f}",
        )
    )


def restore(
    agent: Agent = None,
    workflow: Workflow = None,
    team: Team = None,
    person: Person = None,
    key_id: Key = None,
    everything: Everything = False,
    note: Note = "",
) -> None:
    """Lift a kill (audited). Revoked keys stay revoked (`podium agents rotate-key`); cancelled runs stay
    cancelled (`podium runs resume`)."""
    from podium.governance import kill_scope

    scope = kill_scope(agent=agent, workflow=workflow, team=team, person=person, key=key_id, everything=everything)
    with connected() as pod:
        pod.restore(scope, by=pod.operator(), reason=note)
    console.print("restored: the governor lets it act again.")


# -- policy --------------------------------------------------------------------------------------------------


@policy_app.command("test")
def policy_test(
    folder: Annotated[
        Path | None, typer.Argument(help="Policies and *.test.toml files (default PODIUM_POLICIES or ./policies).")
    ] = None,
) -> None:
    """Run the policy unit tests (podium's baseline and the folder's *.test.toml) against the policies."""
    from podium.policy import PolicySet, run_file, test_suites

    directory = folder or settings().policies_dir
    policies = PolicySet.load(directory)  # loads and validates every policy before any case runs
    cases = table("file", "case", "expected", "decision", "decided by", ids=["decided by"])
    failed = 0
    for suite_policies, path in test_suites(directory):
        for result in run_file(suite_policies, path):
            mark = styled("[green]pass[/] {}" if result.passed else "[bold red]FAIL[/] {}", result.name)
            failed += not result.passed
            cases.add_row(
                *row(
                    result.file,
                    mark,
                    result.expected,
                    "allow" if result.decision.allowed else "deny",
                    ", ".join(result.decision.policies) or "-",
                )
            )
    console.print(cases)
    console.print(
        styled("{} policies, digest {}; ", len(policies.policies), policies.short_digest)
        + (styled("[green]all cases pass[/]") if not failed else styled("[bold red]{} case(s) failed[/]", failed))
    )
    if failed:
        raise typer.Exit(1)


@policy_app.command("explain")
def policy_explain(
    seq: Annotated[int, typer.Argument(help="The audit entry's number (`podium audit list`).")],
    as_json: AsJson = False,
) -> None:
    """Show which policies allowed or denied an audited action, with their text and where they live."""
    with connected(read=True) as pod:
        stored = pod.audit.get(seq)
        policies = pod.policies
    entry = stored.entry
    detail = json.loads(entry.detail)
    if as_json:
        deciding = [(i, policies.policies.get(i)) for i in entry.policies]
        print_json(
            {
                "entry": entry_fields(stored),
                "policy_set": policies.short_digest,
                "policies": [
                    {"id": i, "effect": p.effect, "source": str(p.source), "line": p.line, "text": p.text}
                    if p
                    else {"id": i, "effect": None, "source": None, "line": None, "text": None}
                    for i, p in deciding
                ],
            }
        )
        return
    console.print(
        styled(
            "entry {}: [bold]{}[/] {} {} -> [bold]{}[/] at {}",
            seq,
            entry.actor,
            entry.action,
            entry.resource,
            entry.decision,
            format_time(entry.at),
        )
    )
    if detail.get("reason"):
        console.print("reason:", block(detail["reason"]), sep="\n")
    if not entry.policies:
        console.print(
            "No policy decided this entry: "
            + ("nothing permitted it (default deny)." if entry.decision == "denied" else "it is not a policy decision.")
        )
    recorded_set = detail.get("policy_set", "")
    if recorded_set and recorded_set != policies.short_digest:
        console.print(
            styled(
                "[yellow]the policies changed since (then {}, now {}); showing today's text of the same ids[/]",
                recorded_set,
                policies.short_digest,
            )
        )
    for policy_id in entry.policies:
        policy = policies.policies.get(policy_id)
        if policy is None:
            console.print(styled("[yellow]{}: no longer in the loaded policies[/]", policy_id))
            continue
        console.print()
        console.print(styled("[bold]{} {}[/]  [dim]{}:{}[/]", policy.effect, policy.id, policy.source, policy.line))
        console.print(literal(policy.text))


# -- audit ---------------------------------------------------------------------------------------------------


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many of the latest entries.")] = 20,
    actor: Annotated[str | None, typer.Option(help="Only this actor, e.g. agent:support-triage.")] = None,
    run: Annotated[str | None, typer.Option(help="Only this run.")] = None,
    as_json: AsJson = False,
) -> None:
    """The latest audit entries."""
    with connected(read=True) as pod:
        size = pod.audit.size()
        found = list(pod.audit.entries(actor=actor, run_id=run, after=0 if actor or run else max(0, size - limit)))
    if as_json:
        print_json([entry_fields(stored) for stored in found[-limit:]])
        return
    shown = table("#", "when", "actor", "action", "resource", "decision", "policies", ids=["#"])
    for stored in found[-limit:]:
        e = stored.entry
        shown.add_row(
            *row(stored.seq, format_time(e.at), e.actor, e.action, e.resource, e.decision, ", ".join(e.policies))
        )
    console.print(shown)


@audit_app.command("verify")
def audit_verify(
    export: Annotated[Path | None, typer.Argument(help="An exported log folder; without it, the database.")] = None,
    public_key: Annotated[Path | None, typer.Option(help="The signing key you trust (PEM), for an export.")] = None,
    trusted_head: Annotated[
        Path | None, typer.Option(help="The last head you verified (from --save-head): the export must extend it.")
    ] = None,
    save_head: Annotated[Path | None, typer.Option(help="Keep the export's last head here, for next time.")] = None,
    trust_embedded_key: Annotated[
        bool, typer.Option(help="Without --public-key, accept the key inside the export (proves intact, not who).")
    ] = False,
) -> None:
    """Check the log: every leaf, every signed tree head, against its witnesses (the database) or the key and head
    you trust (an export; the same as `python -m podium.audit.verifier`). Exit 1 unless it verifies."""
    from podium.audit.verifier import check

    if export is not None:
        outcome = check(
            export,
            public_key=public_key,
            trusted_head=trusted_head,
            save_head=save_head,
            trust_embedded_key=trust_embedded_key,
        )
        if outcome.status == 2:
            raise UsageError(outcome.message)
        (console if outcome.status == 0 else err).print(literal(outcome.message))
        raise typer.Exit(outcome.status)
    if public_key or trusted_head or save_head or trust_embedded_key:
        raise UsageError(
            "--public-key, --trusted-head, --save-head and --trust-embedded-key check an export: pass its folder "
            "(the database is checked against its witnesses, PODIUM_AUDIT_WITNESSES)."
        )
    with connected(read=True) as pod:
        result = pod.verify_audit()
    if result.ok:
        witnessed = (
            f", consistent with the head of {result.witnessed_size:,} entries witnessed by {result.witnessed_by}"
            if result.witnessed_by
            else ""
        )
        console.print(
            styled(
                "[green]audit log verified[/]: {} entries, {} signed tree head(s){}; no gap, no alteration.",
                f"{result.entries:,}",
                result.tree_heads,
                witnessed,
            )
        )
        return
    err.print(styled("[bold red]audit log BROKEN[/] at entry {}: {}", result.entries, result.problem))
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the Merkle root of the log as it is now (a signed tree head)."""
    with connected() as pod:
        head = pod.audit.checkpoint()
    if head is None:
        console.print("The audit log is empty; nothing to sign.")
        return
    console.print(
        styled("signed tree head: {} entries, root {}, key {}", f"{head.tree_size:,}", head.root_hash, head.key_id[:16])
    )


@audit_app.command("export")
def audit_export(folder: Annotated[Path, typer.Argument(help="Where to write the export.")]) -> None:
    """Write the log, its signed tree heads and the public key to a folder an auditor can verify alone."""
    with connected() as pod:
        started = time.perf_counter()
        head = pod.audit.export(folder)
    console.print(
        styled(
            "exported {} entries to {} in {} s; check it with `podium audit verify {} --public-key KEY.pem "
            "--save-head LAST-HEAD.json`.",
            f"{head.tree_size:,}",
            folder,
            f"{time.perf_counter() - started:.1f}",
            folder,
        )
    )


audit_key_app = typer.Typer(
    help="The key that signs the audit log's tree heads: one for the whole log, given to every process.",
    no_args_is_help=True,
)
audit_app.add_typer(audit_key_app, name="key")


@audit_key_app.command("export")
def audit_key_export(
    file: Annotated[Path, typer.Argument(help="A new file for the key (an existing one is never overwritten).")],
    public: Annotated[
        bool, typer.Option("--public", help="Only its public half, which auditors verify exports with.")
    ] = False,
) -> None:
    """Copy the key that signs this log to a new file readable by its owner only, for PODIUM_AUDIT_KEY on another
    machine or home (made now if the log has no signed head yet). With --public: the key an auditor passes as
    `podium audit verify EXPORT --public-key FILE`."""
    with connected(read=True) as pod:
        key_id = pod.audit.export_key(file, public=public)
    if public:
        console.print(styled("wrote the public key {} of this log to {}.", f"{key_id[:16]}…", file))
        return
    console.print(
        styled(
            "wrote the signing key {} of this log to {} (owner-only; whoever holds it can sign the log): copy it to "
            "every machine that runs podium on this database and set PODIUM_AUDIT_KEY to its path there.",
            f"{key_id[:16]}…",
            file,
        )
    )


@audit_app.command("prove")
def audit_prove(
    seq: Annotated[int, typer.Argument(help="The entry to prove.")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: a fresh signed head).")] = None,
) -> None:
    """Print an inclusion proof (JSON) that entry SEQ is in the signed tree."""
    with connected() as pod:
        proof = pod.audit.prove_inclusion(seq, size)
    print_json({**proof.__dict__, "holds": proof.holds()})


@audit_app.command("consistency")
def audit_consistency(
    old_size: Annotated[int, typer.Argument(help="The size of the tree you saw before.")],
    size: Annotated[int | None, typer.Option(help="The newer size (default: a fresh signed head).")] = None,
) -> None:
    """Print a consistency proof (JSON) that the log only grew since it had OLD_SIZE entries."""
    with connected() as pod:
        proof = pod.audit.prove_consistency(old_size, size)
    print_json({**proof.__dict__, "holds": proof.holds()})


# -- governance ----------------------------------------------------------------------------------------------


@governance_app.command("report")
def governance_report_command(
    stale_days: Annotated[int, typer.Option(min=1, max=36_500, help="A key older than this is stale.")] = 90,
    markdown: Annotated[Path | None, typer.Option(help="Also write the report as Markdown to this file.")] = None,
    as_json: AsJson = False,
) -> None:
    """Every agent with its owner, permissions, last actions and denials; agents with no owner or stale keys."""
    from podium.governance import governance_report, report_markdown

    with connected(read=True) as pod:
        report = governance_report(pod, stale_days=stale_days)
    if markdown is not None:
        write_output(markdown, report_markdown(report), "the report")
    if as_json:
        print_json(report_fields(report))
        return
    shown = table(
        "agent", "owner", "team", "status", "may use", "last action", "refusals", "key", ids=["agent"], title="agents"
    )
    for a in report.agents:
        shown.add_row(
            *row(
                a.name,
                a.owner or Text("NONE", style="bold red"),
                a.team or "-",
                a.status,
                a.permissions,
                a.last_action,
                f"{a.denials} ({a.last_denial})" if a.last_denial else a.denials,
                Text("stale", style="bold red") if a.stale_key else a.key,
            )
        )
    console.print(shown)
    console.print(
        styled(
            "{} agent(s): [bold]{}[/] without an owner, {}; {} refused action(s) in the log; active kills: {}.",
            len(report.agents),
            f"{report.share_without_owner:.0%}",
            report.key_summary(),
            report.denials,
            ", ".join(report.kills) or "none",
        )
    )
    if markdown is not None:
        console.print(styled("written to {}", markdown))
