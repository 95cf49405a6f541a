"""Bad input gets a clear answer (a form error, or the API's JSON error), never a 500.

The findings first (each failed before the fix: a 500, a Unicode digit read as a
number, or text PostgreSQL cannot store kept for later), then a walk of every URL
pattern of the project (the walker of tests/test_url_auth.py) sending hostile query
strings and form values to each, as the workspace's owner with real objects, as an
anonymous visitor for the public routes, and with a workspace API key for the API.
"""

import inspect
import json
import re
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django import forms as django_forms
from django.contrib.auth.tokens import default_token_generator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import got_request_exception
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from connector.metrics.models import MetricPlan
from connector.sources.api import api
from connector.sources.models import CatalogUpload
from connector.sources.services import api_key_create
from connector.sources.validation import FIELDS
from connector.sync.models import ItemStatus
from tenants.models import Role
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_events, make_plan
from tests.sync.factories import make_run
from tests.test_url_auth import OBJECT_BUILDERS, PUBLIC, route_arguments, walk

pytestmark = pytest.mark.django_db

# Superscript two, Arabic-Indic three, fullwidth one: str.isdigit() takes them all.
UNICODE_DIGITS = ["²", "٣", "\uff11"]


# --- the findings --------------------------------------------------------------------


@pytest.mark.parametrize("limit", [*UNICODE_DIGITS, "9" * 40, "-1", " 5", "5 ", "0"])
def test_api_list__limit_not_ascii_digits_in_range__400_names_limit(client, owner, limit):
    with tenant_scope(owner.tenant):
        _, raw = api_key_create(actor=owner.user, name="hostile")
    response = client.get(
        "/api/v1/events", {"limit": limit}, headers={"Authorization": f"Bearer {raw}"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "limit"
    assert "whole number from 1 to 500" in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize("volume", [*UNICODE_DIGITS, "9" * 40, "-1"])
def test_upload_csv__volume_not_ascii_digits__row_error_on_its_line(
    client_of, admin, workspace, volume
):
    content = f"key,volume\ngood,7\nbad,{volume}\n".encode()
    response = client_of(admin).post(
        reverse("sources:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile("events.csv", content)},
    )
    assert response.status_code == 302
    preview = {
        row.line: row for row in client_of(admin).get(response["Location"]).context["preview"].rows
    }
    assert preview[2].action == "add"
    assert preview[3].action == "error" and preview[3].errors[0]["field"] == "volume"
    assert "whole number" in preview[3].errors[0]["reason"]


def _plan_form(**overrides):
    data = {
        "kind": "auto",
        "success_criteria": "HigherThanBaseline",
        "aggregation": "average",
        "analysis": "mean",
        "randomization_units": ["user"],
        "name_template": "{name}",
        "description_template": "{description}",
    }
    return {**data, **overrides}


@pytest.mark.parametrize("event", [*UNICODE_DIGITS, "9" * 40, "-1", " 1"])
def test_plan_create__event_id_not_ascii_digits__form_error_nothing_saved(
    client_of, admin, workspace, event
):
    real = make_events(workspace, 2)
    response = client_of(admin).post(
        reverse("planner:plan_create", args=[workspace.slug]),
        _plan_form(event=[str(real[0].pk), event]),
    )
    assert response.status_code == 400
    assert "The selection is not valid" in response.content.decode()
    assert not MetricPlan.objects.unscoped().exists()
    # What was checked comes back checked, the rest is dropped.
    assert response.context["checked"] == frozenset({real[0].pk})


@pytest.mark.parametrize("text", ["nul\x00inside", "\ud800"])
def test_upload_json__text_postgresql_cannot_store__row_error_nothing_of_it_stored(
    client_of, admin, workspace, text
):
    # JSON escapes can carry NUL and lone surrogates; PostgreSQL's jsonb takes neither.
    content = json.dumps([{"key": "good"}, {"key": "bad", "name": text}], indent=1).encode()
    response = client_of(admin).post(
        reverse("sources:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile("events.json", content)},
    )
    assert response.status_code == 302
    upload = CatalogUpload.objects.unscoped().get()
    stored = json.dumps(upload.rows)
    assert "\\u0000" not in stored and "\\ud800" not in stored
    bad = [row for row in upload.rows if row["errors"]]
    assert [(row["line"], row["errors"][0]["field"]) for row in bad] == [(5, "name")]


# --- every URL pattern, hostile query strings and form values -------------------------

# Sent to every route, all parameters at once.
HOSTILE = [*UNICODE_DIGITS, "9" * 40, "-1", "", "x" * 10_000, "\x00", "a\x00b", "1\r\n2", "%"]
# Sent one parameter at a time, for the names the route's view reads (a bad value in
# another parameter can stop a view before it reads this one).
ONE_AT_A_TIME = ["²", "9" * 40, "\x00"]
# Names any view might read, besides the ones found below.
GENERIC = ["page", "limit", "offset", "q", "event", "action", "kind", "id", "next", "cursor"]
# Raw reads of the query string or the form in a view module: request.GET.get("page"),
# request.POST.getlist("event"), params["cursor"], ...
RAW_READ = re.compile(r"""(?:GET|POST|params)(?:\.get|\.getlist)?[(\[]\s*["'](\w+)["']""")
INT_PATH_ARGUMENTS = {"membership_id", "plan_id", "key_id", "upload_id", "run_id", "item_id"}


def _form_fields(namespace) -> set[str]:
    return {
        name
        for value in list(vars(namespace).values())
        if isinstance(value, type) and issubclass(value, django_forms.BaseForm)
        for name in value.base_fields
    }


def names_read_by(pattern) -> list[str]:
    """The parameters the route's view module reads raw or through its forms."""
    callback = pattern.callback
    view_class = getattr(callback, "view_class", None)
    module = inspect.getmodule(view_class or inspect.unwrap(callback))
    names = set(RAW_READ.findall(inspect.getsource(module))) | _form_fields(module)
    if view_class is not None and getattr(view_class, "form_class", None):
        names |= set(view_class.form_class.base_fields)
    if module.__name__.startswith("ninja."):  # the API: the parameters it declares
        document = api.get_openapi_schema(path_prefix="/")
        names |= {
            parameter["name"]
            for operations in document["paths"].values()
            for operation in operations.values()
            for parameter in operation["parameters"]
            if parameter["in"] == "query"
        }
    return sorted(names)


@dataclass
class World:
    """A workspace with something behind every URL argument, and who may call it."""

    owner: object
    arguments: dict
    api_headers: dict


@pytest.fixture
def world(owner, workspace, ld, client):
    from tenants.services import invitation_create
    from tests.sync.conftest import connect_workspace

    owner.user.is_staff = True  # reaches the operators' page too
    owner.user.save()
    client.force_login(owner.user)
    connect_workspace(client, workspace, ld)
    events = make_events(workspace, 8, numeric_every=4)
    with tenant_scope(workspace):
        _, raw_key = api_key_create(actor=owner.user, name="walker")
        _, invitation_token = invitation_create(
            actor=owner.user, email="invitee@example.com", role=Role.MEMBER
        )
    plan = make_plan(workspace, owner.user, ids=[e.pk for e in events[:5]])
    run = make_run(workspace, items=3, status=ItemStatus.FAILED, prefix="walk")
    arguments = {
        **{arg: build(workspace) for arg, build in OBJECT_BUILDERS.items()},
        "plan_id": plan.pk,
        "run_id": run.pk,
        "slug": workspace.slug,
        "token": invitation_token,
        "uidb64": urlsafe_base64_encode(force_bytes(owner.user.pk)),
        "key": events[0].key,
    }
    # The password-reset link's token is the second argument of its own URL.
    arguments["reset_token"] = default_token_generator.make_token(owner.user)
    return World(owner, arguments, {"Authorization": f"Bearer {raw_key}"})


# Last: they end what the others need (the session, the connection).
LAST = ["connections:disconnect", "tenants:logout"]


def ordered_routes():
    routes = [(name, pattern) for name, pattern in walk() if name not in LAST]
    return routes + [(name, pattern) for name, pattern in walk() if name in LAST]


def _shown(params: dict) -> str:
    values = {str(v) for v in params.values()}
    if len(params) > 1 and len(values) == 1:
        return f"all {len(params)} parameters = {next(iter(values))[:12]!r}"
    return ", ".join(f"{k}={str(v)[:12]!r}" for k, v in params.items())


class Prober:
    """Sends requests and lists every 5xx with the exception behind it."""

    def __init__(self):
        self.failures: list[str] = []
        self.sent = 0
        self._raised: list[BaseException | None] = []

    def __enter__(self):
        got_request_exception.connect(self._record)
        return self

    def __exit__(self, *exc):
        got_request_exception.disconnect(self._record)

    def _record(self, sender, **kwargs):
        self._raised.append(sys.exc_info()[1])

    def send(self, client, method, url, label, *, query=None, form=None, **options):
        self._raised.clear()
        full_url = url + ("?" + urlencode(query) if query else "")
        if method == "get":
            response = client.get(full_url, **options)
        else:
            response = client.post(full_url, data=form if form is not None else {}, **options)
        self.sent += 1
        if response.status_code >= 500:
            cause = repr(self._raised[-1])[:200] if self._raised else ""
            shown = _shown(query or (form if isinstance(form, dict) else {"body": form}))
            self.failures.append(
                f"{response.status_code} {method.upper()} {label} {shown}: {cause}"
            )


def _url_arguments(world, name, pattern) -> dict:
    arguments = {}
    for arg in route_arguments(pattern):
        if (name, arg) == ("tenants:password_reset_confirm", "token"):
            arg_value = world.arguments["reset_token"]
        else:
            arg_value = world.arguments[arg]
        arguments[arg] = arg_value
    return arguments


def _api_bodies(value: str):
    yield json.dumps({"events": [dict.fromkeys(FIELDS, value)]})
    yield json.dumps({"keys": [value]})
    yield json.dumps({value: value})
    yield value.encode()


def test_every_url_pattern__hostile_query_and_form_values__never_5xx(world):
    """Every route, as the owner (and anonymously when public; with the workspace's API
    key for the API). `admin:` is skipped (walk() leaves it out): Django's own, staff only."""
    owner_client = Client(raise_request_exception=False)
    anonymous = Client(raise_request_exception=False)
    started = time.monotonic()
    with Prober() as probe:
        for name, pattern in ordered_routes():
            arguments = _url_arguments(world, name, pattern)
            url = reverse(name, kwargs=arguments)
            names = names_read_by(pattern)
            is_api = name.startswith("api:")
            headers = world.api_headers if is_api else {}
            owner_client.force_login(world.owner.user)  # again after tenants:logout
            clients = [owner_client] + ([anonymous] if name in PUBLIC and not is_api else [])
            for client in clients:
                for value in HOSTILE:
                    every = dict.fromkeys(sorted({*names, *GENERIC}), value)
                    probe.send(client, "get", url, name, query=every, headers=headers)
                    probe.send(client, "post", url, name, query=every, form=every, headers=headers)
                for param in names:
                    for value in ONE_AT_A_TIME:
                        probe.send(client, "get", url, name, query={param: value}, headers=headers)
                        probe.send(client, "post", url, name, form={param: value}, headers=headers)
                for body in (body for value in HOSTILE if is_api for body in _api_bodies(value)):
                    probe.send(
                        client,
                        "post",
                        url,
                        name,
                        form=body,
                        content_type="application/json",
                        headers=headers,
                    )
            # Path arguments out of every range, and hostile text where a path takes text.
            for arg in set(arguments) - {"slug"}:
                bad = [str(10**40)] if arg in INT_PATH_ARGUMENTS else ["²", "\x00", "x" * 3000]
                for value in bad:
                    try:
                        bad_url = reverse(name, kwargs={**arguments, arg: value})
                    except NoReverseMatch:
                        continue  # the converter cannot even express it
                    for method in ("get", "post"):
                        probe.send(owner_client, method, bad_url, f"{name} {arg}", headers=headers)
    print(f"hostile input: {probe.sent} requests in {time.monotonic() - started:.1f} s")
    failures = probe.failures
    assert not failures, f"{len(failures)} answers were 5xx:\n" + "\n".join(failures)
