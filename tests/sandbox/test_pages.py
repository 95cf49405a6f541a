"""The sandbox's HTML pages, over real HTTP: consent, a metric's page, the token form."""

from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD
from sandbox.testing import TEST_CLIENT

NUMERIC = {
    "key": "checkout-latency",
    "name": "Checkout latency",
    "kind": "custom",
    "isNumeric": True,
    "eventKey": "checkout.latency",
    "unit": "ms",
    "successCriteria": "LowerThanBaseline",
    "randomizationUnits": ["user", "organization"],
    "tags": ["acme", "checkout"],
    "description": "Time from <click> to confirmation",
}


def create_metric(sandbox, token: str, body: dict, project: str = "default") -> dict:
    # LaunchDarkly refuses units the project's experimentation settings do not register.
    units = [
        {"randomizationUnit": unit, "default": index == 0}
        for index, unit in enumerate(body.get("randomizationUnits", []))
    ]
    if units:
        registered = requests.put(
            f"{sandbox.base_url}/api/v2/projects/{project}/experimentation-settings",
            json={"randomizationUnits": units},
            headers={"Authorization": token},
            timeout=5,
        )
        assert registered.status_code == 200, registered.text
    answer = requests.post(
        f"{sandbox.base_url}/api/v2/metrics/{project}",
        json=body,
        headers={"Authorization": token},
        timeout=5,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def consent(sandbox, **extra) -> requests.Response:
    params = {
        "response_type": "code",
        "client_id": TEST_CLIENT.client_id,
        "redirect_uri": TEST_CLIENT.redirect_uri,
        "scope": "writer",
        "state": "st",
        **extra,
    }
    return requests.get(f"{sandbox.base_url}/trust/oauth/authorize", params=params, timeout=5)


def field(html: str, label: str) -> str:
    """The text of a <dd> after the <dt> labelled `label`, unescaped."""
    match = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", html)
    assert match is not None, label
    return unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def test_consent_page__demo_credentials_notice_and_stylesheet(sandbox):
    page = consent(sandbox)
    assert page.status_code == 200
    html = page.text
    notice = (
        f"Local LaunchDarkly sandbox — sign in with the demo account: "
        f"{DEMO_EMAIL} / {DEMO_PASSWORD}"
    )
    assert f"id='demo-credentials'>{notice}</p>" in html
    assert "<style>" in html and "max-width:28rem" in html and "#4c3fd1" in html
    assert "<main class='narrow'>" in html and "name='viewport'" in html
    assert "id='email'" in html and "id='password'" in html
    assert ">Authorize</button>" in html and ">Deny</button>" in html
    assert "class='primary'>Authorize<" in html and "class='secondary'>Deny<" in html
    assert "<script" not in html
    assert TEST_CLIENT.name in html and "read and change" in html  # the writer scope explained


def test_consent_page__wrong_password__error_and_notice_kept(sandbox):
    page = consent(sandbox)
    form = {
        name: unescape(value)
        for name, value in re.findall(r"name='([^']+)' value='([^']*)'", page.text)
    }
    form.update(email=DEMO_EMAIL, password="wrong", decision="approve")
    answer = requests.post(
        f"{sandbox.base_url}/trust/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 200
    assert "role='alert'>Wrong email or password.</p>" in answer.text
    assert "id='demo-credentials'" in answer.text
    assert f"value='{DEMO_EMAIL}'" in answer.text


def test_oauth_error_page__same_look(sandbox):
    page = consent(sandbox, client_id="nobody")
    assert page.status_code == 400
    assert "Unknown client_id." in page.text and "--brand:#4c3fd1" in page.text


def test_metric_page__created_metric__shows_its_fields(sandbox, writer_token):
    rep = create_metric(sandbox, writer_token, NUMERIC)
    page = requests.get(sandbox.base_url + rep["_site"]["href"], timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert field(html, "Name") == "Checkout latency"
    assert field(html, "Key") == "checkout-latency"
    assert field(html, "Type") == ("Custom event, numeric: the average of each unit's event values")
    assert field(html, "Event key") == "checkout.latency"
    assert field(html, "Success criteria") == "Lower than baseline is better"
    assert field(html, "Unit") == "ms"
    assert field(html, "Randomization units") == "user, organization"
    assert field(html, "Tags") == "acme, checkout"
    assert field(html, "Maintainer") == f"Demo Owner ({DEMO_EMAIL})"
    assert field(html, "Version") == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", field(html, "Created"))
    assert field(html, "Description") == "Time from <click> to confirmation"
    assert "&lt;click&gt;" in html  # escaped, not markup
    assert "href='/_sandbox/'" in html


def test_metric_page__conversion_metric__type_in_words_and_blanks(sandbox, writer_token):
    body = {"key": "signed-up", "kind": "custom", "isNumeric": False, "eventKey": "signup"}
    create_metric(sandbox, writer_token, {**body, "unitAggregationType": "sum"})
    html = requests.get(f"{sandbox.base_url}/default/metrics/signed-up/details", timeout=5).text
    assert field(html, "Type") == (
        "Custom event, conversion (count): how many times each unit sent the event"
    )
    assert field(html, "Unit") == "—" and field(html, "Description") == "—"


def test_metric_page__unknown_metric__404_html(sandbox, writer_token):
    create_metric(sandbox, writer_token, NUMERIC)
    for path in ("/default/metrics/nope/details", "/no-project/metrics/checkout-latency/details"):
        page = requests.get(sandbox.base_url + path, timeout=5)
        assert page.status_code == 404, path
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Metric not found" in page.text and "No metric" in page.text


def test_metric_page__same_project_key_in_two_accounts__both_shown(sandbox, writer_token):
    create_metric(sandbox, writer_token, NUMERIC)
    other = sandbox.create_account("Other Co")
    create_metric(sandbox, other["token"], {**NUMERIC, "name": "Other latency"})
    html = requests.get(
        f"{sandbox.base_url}/default/metrics/checkout-latency/details", timeout=5
    ).text
    assert html.count("<section class='card metric'>") == 2
    assert "Checkout latency" in html and "Other latency" in html
    assert other["id"] in html


def test_metric_page__not_logged_nor_faulted_and_api_routes_unshadowed(sandbox, writer_token):
    create_metric(sandbox, writer_token, NUMERIC)
    seq = sandbox.requests_since()[-1]["seq"]
    sandbox.set_faults(rate=1, kinds=["503"])
    page = requests.get(f"{sandbox.base_url}/default/metrics/checkout-latency/details", timeout=5)
    assert page.status_code == 200
    assert sandbox.requests_since(seq) == []
    sandbox.set_faults()
    # Reserved first segments (here the event import's /v2) still reach the API router.
    api = requests.get(f"{sandbox.base_url}/v2/metrics/checkout-latency/details", timeout=5)
    assert api.status_code == 404 and api.json()["code"] == "not_found"


def test_overview__links_metrics_shows_sign_in_and_token_form(sandbox, writer_token):
    create_metric(sandbox, writer_token, NUMERIC)
    html = requests.get(f"{sandbox.base_url}/_sandbox/", timeout=5).text
    assert "href='/default/metrics/checkout-latency/details'><code>checkout-latency</code>" in html
    assert f"<dt>Email</dt><dd><code>{DEMO_EMAIL}</code></dd>" in html
    assert f"<dt>Password</dt><dd><code>{DEMO_PASSWORD}</code></dd>" in html
    assert "<h2>Create an API access token</h2>" in html
    assert "action='/_sandbox/tokens/new'" in html
    demo_id = sandbox.state()["demo_account_id"]
    assert f"<option value='{demo_id}'>" in html


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_token_form__mints_a_working_token_with_the_role(sandbox, role):
    account = sandbox.create_account("Form Co")
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/tokens/new",
        data={"account_id": account["id"], "role": role, "name": "my laptop"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.headers["Cache-Control"] == "no-store"
    html = answer.text
    hint = "Paste it in the connector: Settings \u203a Or paste an API access token"
    assert f"id='token-hint'>{hint}</p>" in html
    assert "href='/_sandbox/'" in html
    match = re.search(r"<code class='secret' id='token'>([^<]+)</code>", html)
    assert match is not None
    token = unescape(match.group(1))
    assert token.startswith("api-")
    identity = requests.get(
        f"{sandbox.base_url}/api/v2/caller-identity", headers={"Authorization": token}, timeout=5
    )
    assert identity.status_code == 200
    body = identity.json()
    assert body["accountId"] == account["id"]
    # API tokens' identity has no `scopes`; the token's own record shows its role.
    assert "scopes" not in body and body["tokenName"] == "my laptop"
    record = requests.get(
        f"{sandbox.base_url}/api/v2/tokens/{body['tokenId']}",
        headers={"Authorization": token},
        timeout=5,
    )
    assert record.json()["role"] == role
    write = requests.post(
        f"{sandbox.base_url}/api/v2/metrics/default",
        json={"key": "w", "kind": "custom", "isNumeric": False, "eventKey": "e"},
        headers={"Authorization": token},
        timeout=5,
    )
    assert write.status_code == (201 if role == "writer" else 403)


def test_token_form__no_name__default_name(sandbox):
    demo_id = sandbox.state()["demo_account_id"]
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/tokens/new",
        data={"account_id": demo_id, "role": "reader", "name": "  "},
        timeout=5,
    )
    token = re.search(r"id='token'>([^<]+)<", answer.text)
    assert token is not None
    identity = requests.get(
        f"{sandbox.base_url}/api/v2/caller-identity",
        headers={"Authorization": unescape(token.group(1))},
        timeout=5,
    ).json()
    assert identity["tokenName"] == "sandbox reader" and identity["accountId"] == demo_id


@pytest.mark.parametrize(
    ("form", "status", "text"),
    [
        ({"account_id": "nope", "role": "writer"}, 404, "Unknown account"),
        ({"role": "admin"}, 400, "Unknown role"),
    ],
)
def test_token_form__bad_input__html_error_and_no_token(sandbox, form, status, text):
    if "account_id" not in form:
        form = {**form, "account_id": sandbox.state()["demo_account_id"]}
    answer = requests.post(f"{sandbox.base_url}/_sandbox/tokens/new", data=form, timeout=5)
    assert answer.status_code == status and text in answer.text
    assert "id='token'" not in answer.text


def test_token_form__get__redirects_to_the_overview_form(sandbox):
    answer = requests.get(
        f"{sandbox.base_url}/_sandbox/tokens/new", allow_redirects=False, timeout=5
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/_sandbox/#create-token"


def test_token_json_route__still_works(sandbox):
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/tokens", json={"role": "reader"}, timeout=5
    )
    assert answer.status_code == 201
    body = answer.json()
    assert body["role"] == "reader" and body["account_id"] == sandbox.state()["demo_account_id"]
    identity = requests.get(
        f"{sandbox.base_url}/api/v2/caller-identity",
        headers={"Authorization": body["token"]},
        timeout=5,
    )
    assert identity.status_code == 200 and "scopes" not in identity.json()
    record = requests.get(
        f"{sandbox.base_url}/api/v2/tokens/{body['id']}",
        headers={"Authorization": body["token"]},
        timeout=5,
    )
    assert record.json()["role"] == "reader"
