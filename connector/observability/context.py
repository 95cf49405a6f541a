"""The context every log record carries: request id, workspace, run, item, Celery task.

One context variable holds the fields; `log_context` adds some for the duration of a
block (the request middleware, a task, the engine once it knows the run and the item)
and `LogContextFilter`, on the handler, copies them onto each record. The workspace
comes from the tenant scope (tenants.scope), which views and tasks already set.

Imported by the Celery app and by the logging configuration, before Django's apps are
ready: nothing here may import a model at module level.
"""

from __future__ import annotations

import logging
import logging.config
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

FIELDS = ("request_id", "workspace", "run_id", "item_id", "task_id")

_NONE: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=_NONE)


def current_log_context() -> Mapping[str, Any]:
    return _context.get()


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` (None leaves one out) to every record logged within the block, and to
    tasks' and engine's own additions (`bind_log_context`), all undone when it ends."""
    known = {name: value for name, value in fields.items() if value is not None}
    token = _context.set(MappingProxyType({**_context.get(), **known}))
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: Any) -> None:
    """Add fields to the innermost `log_context`, until it ends; nothing outside one
    (so a value never outlives the task or request it belongs to)."""
    current = _context.get()
    if current is not _NONE:
        known = {name: value for name, value in fields.items() if value is not None}
        _context.set(MappingProxyType({**current, **known}))


class LogContextFilter(logging.Filter):
    """Copies the context onto each record, as attributes the JSON formatter writes out;
    a value the call passed itself (`extra=`) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = dict(_context.get())
        if "workspace" not in fields and (workspace := _workspace_in_scope()):
            fields["workspace"] = workspace
        for name, value in fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        if (request := getattr(record, "request", None)) is not None:
            _without_path(record, request)
        return True


def route_of(request: Any) -> str:
    """The URL pattern a request matched, never its path: invitation and password-reset
    paths carry their secret token."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None else "(no route)"


def _without_path(record: logging.LogRecord, request: Any) -> None:
    """Django's `django.request` records ("Not Found: /path") name the path, in their
    arguments and in the request they carry: the route pattern stands in for both."""
    path, route = getattr(request, "path", None), route_of(request)
    if isinstance(record.args, tuple) and path is not None:
        record.args = tuple(route if arg == path else arg for arg in record.args)
    record.request = f"{getattr(request, 'method', '')} {route}"


def _workspace_in_scope() -> str | None:
    try:
        from tenants.scope import current_tenant_or_none
    except Exception:  # logging before Django's apps are loaded
        return None
    tenant = current_tenant_or_none()
    return tenant.slug if tenant is not None else None


# --- Celery --------------------------------------------------------------------------

# Tokens of the task contexts entered at task_prerun, by thread and task id (one worker
# thread runs one task at a time; eager tasks run in their caller's thread).
_task_tokens: dict[tuple[int, str], Token] = {}


def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        token = _context.set(MappingProxyType({**_context.get(), "task_id": task_id}))
        _task_tokens[(threading.get_ident(), task_id)] = token


def _task_finished(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop((threading.get_ident(), task_id or ""), None)
    if token is not None:
        try:
            _context.reset(token)
        except ValueError:  # set in another context: start the next task afresh
            _context.set(_NONE)


def _keep_django_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Celery would replace the root logger's handlers with its own text format; with a
    receiver for `setup_logging` it leaves logging alone, and Django's LOGGING (JSON in
    production) stays. The worker's `--loglevel` still sets the level."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


def connect_celery_signals() -> None:
    from celery import signals

    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_finished, weak=False)
    signals.setup_logging.connect(_keep_django_logging, weak=False)
