"""LaunchDarkly's OpenAPI document, as JSON Schema validators.

The sandbox validates metric request bodies against `MetricPost`, and tests validate
every `/api/v2` response against the operation's response schema, both from the same
vendored copy of LaunchDarkly's production spec (`spec/openapi.json`, unchanged from
launchdarkly/ldcli `ld-openapi.json`), so the sandbox cannot drift from the shapes
the real service documents.

OpenAPI 3.0 schemas are almost JSON Schema draft 4/7; the one difference that matters
here is `nullable: true`, which is translated to a `"null"` type. `$ref` siblings are
ignored, as both OpenAPI 3.0 and draft 7 say.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

SPEC_PATH = Path(__file__).parent / "spec" / "openapi.json"

# LaunchDarkly's spec lists 429 (and some 4xx) only on some operations, although every
# route can be rate limited; an undocumented error status falls back to the spec's
# shared error schema for that status.
ERROR_SCHEMAS = {
    400: "InvalidRequestErrorRep",
    401: "UnauthorizedErrorRep",
    403: "ForbiddenErrorRep",
    404: "NotFoundErrorRep",
    405: "MethodNotAllowedErrorRep",
    409: "StatusConflictErrorRep",
    429: "RateLimitedErrorRep",
}


def _translate_nullable(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _translate_nullable(value) for key, value in node.items()}
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_translate_nullable(item) for item in node]
    return node


@cache
def load_spec() -> dict[str, Any]:
    """The vendored document, with `nullable` translated (parsed once per process)."""
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return _translate_nullable(json.load(fh))


@cache
def _validator(ref: str) -> Draft7Validator:
    # `$ref` at the root with the whole document beside it: draft 7 ignores the
    # siblings for validation but resolves "#/components/..." against them.
    root = dict(load_spec())
    root["$ref"] = ref
    return Draft7Validator(root)


def schema_errors(ref: str, instance: Any) -> list[str]:
    """Messages for each way `instance` violates the schema at `ref` (a JSON pointer)."""
    validator = _validator(ref)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def component_errors(name: str, instance: Any) -> list[str]:
    return schema_errors(f"#/components/schemas/{name}", instance)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str


@cache
def _operations() -> list[tuple[re.Pattern[str], Operation]]:
    spec = load_spec()
    ops = []
    for template, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                ops.append((pattern, Operation(method.upper(), template, op["operationId"])))
    # Literal segments win over parameters ("/members/me" style clashes).
    ops.sort(key=lambda entry: entry[1].template.count("{"))
    return ops


def find_operation(method: str, path: str) -> Operation | None:
    """The spec operation for a concrete request path (no query string)."""
    for pattern, op in _operations():
        if op.method == method.upper() and pattern.match(path):
            return op
    return None


@dataclass(frozen=True)
class ResponseCheck:
    operation: Operation | None
    schema: str | None  # pointer validated against, None when nothing applies
    errors: list[str]


def check_response(method: str, path: str, status: int, body: Any) -> ResponseCheck:
    """Validate a response body against the documented schema for (method, path, status)."""
    op = find_operation(method, path)
    if op is None:
        return ResponseCheck(None, None, [f"no operation for {method} {path}"])
    spec_op = load_spec()["paths"][op.template][op.method.lower()]
    response = spec_op["responses"].get(str(status)) or spec_op["responses"].get("default")
    pointer = None
    if response is not None:
        if "application/json" in response.get("content", {}):
            escaped = op.template.replace("~", "~0").replace("/", "~1")
            pointer = (
                f"#/paths/{escaped}/{op.method.lower()}/responses/"
                f"{status if str(status) in spec_op['responses'] else 'default'}"
                "/content/application~1json/schema"
            )
        elif body is None:
            return ResponseCheck(op, None, [])
    elif status in ERROR_SCHEMAS:
        pointer = f"#/components/schemas/{ERROR_SCHEMAS[status]}"
    if pointer is None:
        return ResponseCheck(op, None, [f"status {status} undocumented for {op.operation_id}"])
    return ResponseCheck(op, pointer, schema_errors(pointer, body))
