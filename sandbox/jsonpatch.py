"""RFC 6902 JSON Patch over plain JSON values, the only PATCH format metrics accept.

Small and strict on purpose: an operation that cannot apply raises PatchError
(a bad document) or PatchTestFailed (a `test` that did not hold), never half-applies,
because the patch works on a deep copy.
"""

from __future__ import annotations

import copy
from typing import Any

OPS = ("add", "remove", "replace", "move", "copy", "test")


class PatchError(ValueError):
    pass


class PatchTestFailed(PatchError):
    pass


def parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _parent(doc: Any, parts: list[str], pointer: str) -> tuple[Any, str]:
    if not parts:
        raise PatchError("the whole document cannot be replaced")
    node = doc
    for part in parts[:-1]:
        node = _child(node, part, pointer)
    return node, parts[-1]


def _index(container: list, part: str, pointer: str, *, for_add: bool = False) -> int:
    if for_add and part == "-":
        return len(container)
    if not (part.isascii() and part.isdigit()) or (part != "0" and part.startswith("0")):
        raise PatchError(f"bad array index in {pointer!r}")
    index = int(part)
    if index > len(container) or (index == len(container) and not for_add):
        raise PatchError(f"array index out of range in {pointer!r}")
    return index


def _child(node: Any, part: str, pointer: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            raise PatchError(f"path {pointer!r} does not exist")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, pointer)]
    raise PatchError(f"path {pointer!r} does not exist")


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for part in parse_pointer(pointer):
        node = _child(node, part, pointer)
    return node


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, last = _parent(doc, parse_pointer(pointer), pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, for_add=True), value)
    else:
        raise PatchError(f"path {pointer!r} does not exist")


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, parse_pointer(pointer), pointer)
    value = _child(parent, last, pointer)
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[_index(parent, last, pointer)]
    return value


def apply_patch(doc: Any, patch: list[dict[str, Any]]) -> Any:
    """Apply a validated patch (see `check_operations`) to a copy of `doc`."""
    result = copy.deepcopy(doc)
    for op in patch:
        kind, path = op["op"], op["path"]
        if kind == "add":
            _add(result, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(result, path)
        elif kind == "replace":
            _remove(result, path)
            _add(result, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            _add(result, path, _remove(result, op["from"]))
        elif kind == "copy":
            _add(result, path, copy.deepcopy(_get(result, op["from"])))
        elif kind == "test":
            try:
                actual = _get(result, path)
            except PatchError as exc:
                raise PatchTestFailed(f"test failed: {path} does not exist") from exc
            # JSON equality: 1 == 1.0 but True is not 1.
            expected = op["value"]
            if actual != expected or isinstance(actual, bool) != isinstance(expected, bool):
                raise PatchTestFailed(f"test failed: {path} is not {expected!r}")
    return result


def check_operations(patch: Any) -> list[dict[str, Any]]:
    """Raise PatchError unless `patch` is a well-formed JSON Patch document."""
    if not isinstance(patch, list):
        raise PatchError("a JSON Patch document must be an array of operations")
    for index, op in enumerate(patch):
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise PatchError(f"operation {index}: op and path are required")
        if op.get("op") not in OPS:
            raise PatchError(f"operation {index}: op must be one of {', '.join(OPS)}")
        parse_pointer(op["path"])
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {index}: value is required for {op['op']}")
        if op["op"] in ("move", "copy"):
            if not isinstance(op.get("from"), str):
                raise PatchError(f"operation {index}: from is required for {op['op']}")
            parse_pointer(op["from"])
    return patch


def operations_of_body(body: Any) -> list[dict[str, Any]]:
    """The checked operations of a PATCH body: RFC 6902 JSON Patch, or LaunchDarkly's
    `{comment, patch}` wrapping of one. PatchError says what is wrong."""
    if isinstance(body, dict) and "patch" in body:
        body = body["patch"]
    return check_operations(body)
