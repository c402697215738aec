"""`podium route eval`: replay an organisation's own per-query outcomes through the cost router; `podium route
status`: whether the live routers keep their quality floor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from podium.cli._common import connected, console, output_file, progress_bar, write_output
from podium.cli._display import AsJson, print_json, row, styled, table
from podium.errors import UsageError

if TYPE_CHECKING:
    from podium.cost import Price
    from podium.models import CostColumn, PriorScorer

route_app = typer.Typer(
    help="The cost router: whether it keeps its quality floor, and how it does on per-query outcome data.",
    no_args_is_help=True,
)
_VERDICT_STYLE = {"holding": "green", "below": "bold red", "unsure": "yellow", "no outcomes": "dim"}


@route_app.command("status")
def route_status(
    as_json: AsJson = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if a router is below its floor (for monitoring).")
    ] = False,
) -> None:
    """Whether each router keeps routing.floor on its recent reported outcomes (routing.floor_window of them, or
    200), with an interval at routing.floor_confidence, per model too; and what to do when it does not."""
    from podium.governance import floor_status

    with connected(read=True) as pod:
        statuses = floor_status(pod.engine, pod.config.routing)
    if as_json:
        print_json([status.as_dict() for status in statuses])
    elif not statuses:
        console.print("No routed requests yet: route with agent.run(prompt, model=[...]) or the gateway's podium/auto.")
    else:
        first = statuses[0]
        shown = table(
            "router",
            "requests",
            "outcomes",
            "quality",
            "verdict",
            title=f"Against routing.floor {first.floor:.0%}, at {first.confidence:.0%} confidence",
            title_justify="left",
        )
        for status in statuses:
            quality = "-" if status.quality is None else f"{status.quality:.0%} ({status.low:.0%}-{status.high:.0%})"
            verdict = styled(f"[{_VERDICT_STYLE[status.verdict]}]{{}}[/]", status.verdict)
            shown.add_row(*row(status.router, status.requests, status.judged, quality, verdict))
        console.print(shown)
        for status in statuses:
            models = "; ".join(
                f"{m.model} {m.requests} requests" + ("" if m.quality is None else f", {m.quality:.0%} of {m.judged}")
                for m in status.models
            )
            console.print(styled("{}: {}. {}.", status.router, models, status.advice()))
            if status.agreement is not None:
                console.print(
                    styled(
                        "  shadow sample: {} answers by the strongest model, {} the same as the one served.",
                        status.shadows,
                        f"{status.agreement:.0%}",
                    )
                )
        console.print(
            "[dim]outcomes: the recent ones judged (routing.floor_window, or 200); quality: their success share and "
            "its one-sided interval (Wilson); docs/routing.md[/]"
        )
    if check and any(status.verdict == "below" for status in statuses):
        raise typer.Exit(1)


@route_app.command("eval")
def route_eval(
    file: Annotated[Path, typer.Argument(help="CSV with one row per query.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="A model's quality column, as COLUMN or COLUMN=PRICE (PRICE: provider:model for a genai-prices list "
            "price, IN/OUT USD per million tokens, or column:COST_COLUMN for what each query cost, in USD; without "
            "one the column's name is looked up in genai-prices). Give it for each model, two or more."
        ),
    ] = None,
    weak: Annotated[str | None, typer.Option(help="Two-model shorthand: the weak (cheap) model's column.")] = None,
    strong: Annotated[str | None, typer.Option(help="Two-model shorthand: the strong model's column.")] = None,
    weak_price: Annotated[str | None, typer.Option(help="The --weak model's PRICE, as for --model.")] = None,
    strong_price: Annotated[str | None, typer.Option(help="The --strong model's PRICE, as for --model.")] = None,
    scale: Annotated[
        str | None,
        typer.Option(
            help="LOW:HIGH, the worst and best numeric score (e.g. 1:10), mapped to 0 and 1 for the router. "
            "Default: the lowest and highest score in the file."
        ),
    ] = None,
    prompt: Annotated[str, typer.Option(help="Column holding the prompt text.")] = "prompt",
    group: Annotated[str | None, typer.Option(help="Column with a category the router may use (e.g. subject).")] = None,
    exclude: Annotated[Path | None, typer.Option(help="JSON-lines file of prompts to leave out.")] = None,
    output_tokens: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Tokens each answer is assumed to take.")
    ] = 5,
    seeds: Annotated[int, typer.Option(min=1, max=1_000, help="Random arrival orders to average over.")] = 5,
    plot: Annotated[Path | None, typer.Option(help="Write the quality / cost plot here (SVG).")] = None,
    prior: Annotated[
        bool,
        typer.Option(
            help="Start the router from podium's prior of public outcomes, as workflows do (needs "
            "podium[embeddings]; embeds each prompt once, ~20 ms each). Models are matched by column name. Do not "
            "use it on the public sets the prior was trained on (docs/routing.md): that would not be held out."
        ),
    ] = False,
) -> None:
    """Replay the queries as a live stream through the router, at several quality floors, and report the cost
    saved at 95% of the best model's quality, APGR, the share of requests per model, how often the floor held
    over the stream, and the random and oracle baselines.

    Each model column holds correct/incorrect (True/False, 1/0, yes/no) or a numeric score (e.g. a judge's 1-10)."""
    from podium.models import FLOOR_SHARES, evaluate, load_queries

    for price, column, name in ((weak_price, weak, "weak"), (strong_price, strong, "strong")):
        if price is not None and column is None:
            raise UsageError(f"--{name}-price prices the --{name} model: give --{name} COLUMN too, or use --model.")
    pairs = [_model(spec) for spec in model or []]
    pairs = [*([(weak, weak_price)] if weak else []), *pairs, *([(strong, strong_price)] if strong else [])]
    columns, prices = [column for column, _ in pairs], {column: _price(p) for column, p in pairs if p}
    if plot:
        output_file(plot, "the plot")  # before minutes of evaluation, not after
    outcomes = load_queries(
        file,
        prompt=prompt,
        models=columns,
        prices=prices,
        group=group,
        exclude=exclude,
        scale=_scale(scale) if scale is not None else None,
        output_tokens=output_tokens,
    )
    scorer = _prior_of_public_outcomes([q.task.text for q in outcomes.queries], columns) if prior else None
    what = f"Routing {len(outcomes.queries):,} queries over {len(columns)} models"
    with progress_bar(f"{what} at {len(FLOOR_SHARES)} floors x {seeds} seeds") as progress:
        task = progress.add_task("route", total=seeds * (len(FLOOR_SHARES) + 1))  # + the run that measures its floor
        evaluation = evaluate(outcomes, seeds=seeds, prior=scorer, progress=lambda: progress.advance(task))
    print_route_summary(evaluation.summary())
    if plot:
        x = "strong calls" if len(columns) == 2 else "cost"
        write_output(plot, evaluation.plot(f"Routing {file.name}: quality vs {x}"), "the plot")
        console.print(styled("Plot written to {}", plot))


def _prior_of_public_outcomes(texts: list[str], columns: list[str]) -> PriorScorer:
    """The shipped prior, with every prompt embedded once up front (the replay decides each one many times)."""
    from podium.models import MiniLM, PriorScorer, RoutePrior

    unknown = [column for column in columns if not RoutePrior.shipped().knows(column)]
    console.print(
        styled("The prior knows {} of the {} models", len(columns) - len(unknown), len(columns))
        + (styled("; these start from its generic head: {}", ", ".join(unknown)) if unknown else Text("."))
    )
    model = MiniLM(cache_size=len(texts))
    with progress_bar(f"Embedding {len(texts):,} prompts for the prior") as progress:
        task = progress.add_task("embed", total=len(texts))
        for text in texts:
            model.embed([text])
            progress.advance(task)
    return PriorScorer(RoutePrior.shipped(), model)


def _model(spec: str) -> tuple[str, str | None]:
    """`COLUMN` or `COLUMN=PRICE` (split at the last `=`: a price holds none)."""
    column, _, price = spec.rpartition("=") if "=" in spec else (spec, "", "")
    if not column.strip():
        raise UsageError(f"--model {spec!r} names no column: give --model COLUMN or --model 'COLUMN=PRICE'.")
    return column, price or None


def _price(spec: str) -> Price | CostColumn:
    """A --model PRICE: column:COST_COLUMN, or what `Price.parse` reads."""
    from podium.cost import Price
    from podium.models import CostColumn

    if spec.startswith("column:"):
        if not (name := spec.removeprefix("column:").strip()):
            raise UsageError("column: names no cost column: give --model 'COLUMN=column:COST_COLUMN'.")
        return CostColumn(name)
    return Price.parse(spec)


def _scale(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(":"))
    except ValueError:
        raise UsageError(
            f"--scale {text!r} is not LOW:HIGH: give the worst and best score the columns can hold, e.g. --scale 1:10."
        ) from None
    return low, high  # load_queries checks it is a scale (finite, 0 <= LOW < HIGH)


def print_route_summary(summary: dict[str, Any]) -> None:
    def share(value: float | None) -> str:
        return "not reached" if value is None else f"{value:.1%}"

    def apgr(value: float | None, sd: float | None = None) -> str:
        return "n/a" if value is None else f"{value:.3f}" + ("" if sd is None else f" ± {sd:.3f}")

    reference, models, quality = summary["reference"], summary["models"], summary["model_quality"]
    target = f"{summary['target_quality']:.3f}"
    console.print(
        styled(
            "{} queries, {} seeds, {} models; quality target {}: 95% of the best, always-{} ({}), the strong model "
            "below; the cheapest is {} ({})",
            f"{summary['queries']:,}",
            summary["seeds"],
            len(models),
            target,
            reference,
            f"{summary['strong_quality']:.3f}",
            models[0],
            f"{summary['weak_quality']:.3f}",
        )
    )
    if summary["quality_kind"] == "numeric":
        low, high = summary["scale"]
        source = "given with --scale" if summary["scale_source"] == "--scale" else "the lowest and highest in the file"
        console.print(
            styled(
                "Numeric scores, in the file's units; the router sees them mapped from {}:{} to 0..1 ({}).",
                f"{low:g}",
                f"{high:g}",
                source,
            )
        )
    table = Table(
        "",
        "quality",
        "cost saved",
        "strong calls saved",
        "APGR",
        title="At 95% of the strong model's quality (podium: mean ± sd over seeds)",
    )
    table.add_row(
        "podium",
        target,
        share(summary["cost_saved_at_95pct"])
        + ("" if summary["cost_saved_at_95pct"] is None else f" ± {summary['cost_saved_at_95pct_sd'] or 0:.1%}"),
        share(summary["strong_calls_saved_at_95pct"]),
        apgr(summary["apgr"], summary["apgr_sd"] or 0.0),
    )
    table.add_row(
        "random mix",
        target,
        share(summary["random_cost_saved_at_95pct"]),
        share(summary["random_strong_calls_saved_at_95pct"]),
        apgr(summary["random_apgr"]),
    )
    table.add_row(
        "oracle",
        target,
        share(summary["oracle_cost_saved_at_95pct"]),
        share(summary["oracle_strong_calls_saved_at_95pct"]),
        "",
    )
    costs = summary["model_cost_usd"]
    for name in models:
        strong_calls_saved = "0.0%" if name == reference else "100.0%"
        table.add_row(
            Text(f"always {name}"),
            f"{quality[name]:.3f}",
            share(1 - costs[name] / costs[reference]),
            strong_calls_saved,
            "",
        )
    console.print(table)
    for label, key in (("podium", "tier_shares"), ("random", "random_tier_shares"), ("oracle", "oracle_tier_shares")):
        shares = summary[key]
        told = "not reached" if shares is None else ", ".join(f"{m} {shares[m]:.1%}" for m in models)
        console.print(styled("Requests per model at 95%, {}: {}", label, told))
    kept = share(summary["floor_kept_share"])
    console.print(styled("Floor kept in {} of the stream's windows (the runs at the 95% floor, all seeds).", kept))
    paired, alone = share(summary["floor_kept_share_paired"]), share(summary["reference_floor_kept_share"])
    console.print(
        styled(
            "Against 95% of {} on each window's own tasks: kept in {}. {} alone met the target in {} of them.",
            reference,
            paired,
            reference,
            alone,
        )
    )
    measured = summary["measured_quality_share"]
    console.print(
        styled(
            "Told only '95% of {}', measuring it as it goes (its own outcomes and a shadow sample): {} of its quality, "
            "{} saved, floor kept in {} of the windows ({} paired).",
            reference,
            "n/a" if measured is None else f"{measured:.1%}",
            share(summary["measured_cost_saved_at_95pct"]),
            share(summary["measured_floor_kept_share"]),
            share(summary["measured_floor_kept_share_paired"]),
        )
    )
