"""A workflow's parameters as JSON schemas, so that a run started by name is checked before it is queued.

A worker validates a run's arguments against the workflow's type hints when it picks the run up (pydantic, through
DBOS). A process that starts runs by name (`podium runs start`, another service) does not have the workflow's code,
so without this it would queue anything, say ENQUEUED, and the run would fail later, on a worker. `podium.launch`
records each declared workflow's parameters (`parameters_of`); `Runs.start` checks the arguments against them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, get_type_hints

from pydantic import PydanticSchemaGenerationError, TypeAdapter
from pydantic.errors import PydanticInvalidForJsonSchema

from podium.errors import UsageError
from podium.review import problems


def parameters_of(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    """Each parameter of `fn`: its name, JSON schema (empty: anything) and whether it is required; a `*args`
    parameter is named `*name` (its schema is each argument's), and keyword-only ones and `**kwargs` are left out:
    a run started by name passes positional arguments."""
    try:
        hints = get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}  # annotations that do not resolve here: the worker's validator still checks
    found: list[dict[str, Any]] = []
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind in (parameter.KEYWORD_ONLY, parameter.VAR_KEYWORD):
            continue
        star = "*" if parameter.kind is parameter.VAR_POSITIONAL else ""
        schema: dict[str, Any] = {}
        if parameter.name in hints:
            try:
                schema = TypeAdapter(hints[parameter.name]).json_schema()
            except (PydanticSchemaGenerationError, PydanticInvalidForJsonSchema):
                schema = {}  # a type JSON cannot carry: nothing to check it against here
        required = not star and parameter.default is parameter.empty
        found.append({"name": star + parameter.name, "schema": schema, "required": required})
    return found


def check_arguments(workflow: str, parameters: Sequence[dict[str, Any]], args: Sequence[Any]) -> None:
    """Refuse `args` unless they fit `parameters` (from `parameters_of`), naming each problem and the signature."""
    star = next((p for p in parameters if p["name"].startswith("*")), None)
    named = [p for p in parameters if not p["name"].startswith("*")]
    required = sum(p["required"] for p in named)
    found: list[str] = []
    if len(args) < required:
        missing = ", ".join(p["name"] for p in named[len(args) : required])
        found.append(f"missing {missing}")
    if len(args) > len(named) and star is None:
        found.append(f"{len(args)} arguments given, it takes at most {len(named)}")
    for number, (value, parameter) in enumerate(zip(args, named, strict=False), start=1):
        found += problems(value, parameter["schema"], at=f"argument {number} ({parameter['name']})")
    if star is not None:
        for number, value in enumerate(args[len(named) :], start=len(named) + 1):
            found += problems(value, star["schema"], at=f"argument {number}")
    if found:
        raise UsageError(
            f"the arguments do not fit {workflow}({', '.join(_shown(p) for p in parameters)}): "
            + "; ".join(found[:5])
            + ("; …" if len(found) > 5 else "")
            + ". Nothing was queued; give each argument as a JSON value of its type."
        )


def _shown(parameter: dict[str, Any]) -> str:
    schema = parameter["schema"]
    kind = schema.get("title") or schema.get("type") or "any"
    return f"{parameter['name']}: {kind}" + ("" if parameter["required"] else " = …")
