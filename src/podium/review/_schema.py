"""Checking a reviewer's edit against the JSON schema of the action's arguments, before it is accepted.

The schema is the one pydantic-ai derives from the tool's signature, stored with the request, so a person can
edit from any process without the workflow's code. This checks the part of JSON Schema such signatures use
(types, required and unknown fields, enums, bounds, arrays, nested objects through `$defs`); when the action runs,
the tool's own pydantic validator checks the arguments once more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def problems(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, at: str = "") -> list[str]:
    """What is wrong with `value` under `schema`, one line per problem (empty: it fits)."""
    root = root or schema
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return problems(value, root.get("$defs", {}).get(name, {}), root, at)
    where = at or "value"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [problems(value, option, root, at) for option in schema[key]]
            return [] if any(not found for found in options) else [f"{where}: fits none of the allowed forms"]
    expected = schema.get("type")
    names = expected if isinstance(expected, list) else [expected] if expected else []
    if names and not any(_is(value, name) for name in names):
        return [f"{where}: expected {' or '.join(names)}, got {type(value).__name__} {value!r}"]
    found = (
        [f"{where}: must be one of {schema['enum']}, got {value!r}"] if value not in schema.get("enum", [value]) else []
    )
    found += _bounds(value, schema, where)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += problems(item, schema["items"], root, f"{where}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{where}: missing required field {n!r}" for n in schema.get("required", []) if n not in value]
        if schema.get("additionalProperties") is False:
            found += [f"{where}: unknown field {name!r}" for name in value if name not in properties]
        for name, item in value.items():
            if name in properties:
                found += problems(item, properties[name], root, f"{at}.{name}" if at else name)
    return found


def _is(value: Any, type_name: str) -> bool:
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False  # JSON has no boolean numbers
    return isinstance(value, _TYPES.get(type_name, (object,)))


def _bounds(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            found.append(f"{where}: at least {schema['minLength']} characters")
        if len(value) > schema.get("maxLength", len(value)):
            found.append(f"{where}: at most {schema['maxLength']} characters")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get("minimum", value):
            found.append(f"{where}: must be >= {schema['minimum']}")
        if value > schema.get("maximum", value):
            found.append(f"{where}: must be <= {schema['maximum']}")
    return found
