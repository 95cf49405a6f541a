"""The sandbox's few HTML pages: OAuth sign-in + consent, OAuth errors, an overview
with a form to mint API access tokens, and a metric's page (its `_site` link).

Plain server-rendered forms without JavaScript, so browser tests can drive them and a
person can read them. Every value is escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD, Account, OAuthClient, Project, Token

# The sandbox announces itself on the consent page, so nobody mistakes it for the real
# LaunchDarkly, and says which account to sign in with. Browser tests follow this text.
DEMO_NOTICE = (
    f"Local LaunchDarkly sandbox — sign in with the demo account: {DEMO_EMAIL} / {DEMO_PASSWORD}"
)
# U+203A (single right-pointing angle quote) between the connector's page and section.
TOKEN_PASTE_HINT = "Paste it in the connector: Settings \u203a Or paste an API access token"

STYLE = """
:root{--ink:#1d2330;--muted:#5b6475;--line:#dfe3ea;--bg:#f6f7fb;--brand:#4c3fd1;
--ok:#137a48;--warn:#9a6400;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
font-size:1rem;line-height:1.5;color:var(--ink);background:var(--bg)}
header.top{display:flex;align-items:center;gap:.5rem;flex-wrap:wrap;
padding:.75rem 1rem;background:#fff;border-bottom:1px solid var(--line)}
header.top .brand{font-weight:650;color:var(--ink);text-decoration:none}
header.top .brand::before{content:"";display:inline-block;width:.7rem;height:.7rem;
margin-right:.5rem;border-radius:3px;background:var(--brand)}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.75rem;
font-weight:600;border:1px solid currentColor}
.badge.warn{color:var(--warn)}
.badge.ok{color:var(--ok)}
main{max-width:64rem;margin:2rem auto;padding:0 1rem}
main.narrow{max-width:28rem}
.card{background:#fff;border:1px solid var(--line);border-radius:12px;padding:1.5rem;
margin:0 0 1.25rem}
h1{font-size:1.4rem;line-height:1.25;margin:0 0 .75rem}
h2{font-size:1.15rem;margin:0 0 .75rem}
h3{font-size:1rem;margin:1.25rem 0 .5rem}
p{margin:.5rem 0}
ul{padding-left:1.25rem}
li{overflow-wrap:anywhere}
a{color:var(--brand)}
.muted,small{color:var(--muted)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875em;
background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:0 .25rem;
overflow-wrap:anywhere}
.notice{margin:0 0 1.25rem;padding:.75rem 1rem;border:1px solid var(--line);
border-left:4px solid var(--warn);border-radius:8px;background:#fff8e8;font-size:.95rem}
.error{color:var(--bad);font-weight:600}
.notice.error{border-left-color:var(--bad);background:#fdf0ef}
label{display:block;font-weight:600;font-size:.9rem;margin:1rem 0 .3rem}
input[type=email],input[type=password],input[type=text],select{display:block;width:100%;
font:inherit;color:var(--ink);background:#fff;padding:.55rem .7rem;
border:1px solid var(--line);border-radius:8px}
input:focus,select:focus,button:focus-visible{outline:2px solid var(--brand);
outline-offset:1px}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.5rem}
button{font:inherit;font-weight:600;padding:.6rem 1.2rem;border-radius:8px;cursor:pointer;
border:1px solid var(--line);background:#fff;color:var(--ink)}
button.primary{background:var(--brand);border-color:var(--brand);color:#fff}
button.secondary:hover{background:var(--bg)}
.actions button{flex:1 1 8rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
td,th{border-bottom:1px solid var(--line);padding:.4rem .5rem;text-align:left;
font-size:.9rem;vertical-align:top}
th{color:var(--muted);font-weight:600}
td code{white-space:nowrap;overflow-wrap:normal}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1.25rem;margin:0}
dl.fields dt{color:var(--muted);font-weight:600}
dl.fields dd{margin:0;overflow-wrap:anywhere}
.secret{display:block;user-select:all;word-break:break-all;padding:.6rem .7rem;
font-size:.95rem;
border-color:var(--ok)}
@media (max-width:30rem){main{margin:1rem auto}.card{padding:1rem}
dl.fields{grid-template-columns:1fr;gap:0}dl.fields dd{margin-bottom:.6rem}}
"""

SCOPE_TEXT = {
    "reader": "read your LaunchDarkly account's projects, environments and metrics",
    "writer": "read and change your LaunchDarkly account's projects, environments and metrics",
}


def _page(title: str, body: str, *, narrow: bool = False) -> str:
    main = "<main class='narrow'>" if narrow else "<main>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)} · LaunchDarkly sandbox</title><style>{STYLE}</style></head>"
        "<body><header class='top'><a class='brand' href='/_sandbox/'>LaunchDarkly sandbox</a>"
        "<span class='badge warn'>Development tool</span></header>"
        f"{main}{body}</main></body></html>"
    )


def metric_path(project_key: str, metric_key: str) -> str:
    """A metric's page, where LaunchDarkly's `_site` link points."""
    return f"/{quote(project_key, safe='')}/metrics/{quote(metric_key, safe='')}/details"


def consent_page(
    client: OAuthClient, scope: str, hidden: dict[str, str], email: str = "", error: str = ""
) -> str:
    fields = "".join(
        f"<input type='hidden' name='{escape(name)}' value='{escape(value)}'>"
        for name, value in hidden.items()
    )
    scopes = "".join(
        f"<li><code>{escape(s)}</code>: {escape(SCOPE_TEXT.get(s, s))}</li>" for s in scope.split()
    )
    error_html = f"<p class='notice error' role='alert'>{escape(error)}</p>" if error else ""
    return _page(
        f"Authorize {client.name}",
        f"""<p class='notice' role='note' id='demo-credentials'>{escape(DEMO_NOTICE)}</p>
<div class='card'>
<h1>Authorize {escape(client.name)}</h1>
<p><strong>{escape(client.name)}</strong> wants to access your LaunchDarkly account
with the scope:</p>
<ul>{scopes}</ul>
<p class='muted'>After you approve, you will be sent back to
<code>{escape(client.redirect_uri)}</code>.</p>
{error_html}
<form method='post' action='/trust/oauth/authorize'>
{fields}
<label for='email'>Email</label>
<input type='email' id='email' name='email' value='{escape(email)}' autocomplete='username'>
<label for='password'>Password</label>
<input type='password' id='password' name='password' autocomplete='current-password'>
<div class='actions'>
<button type='submit' name='decision' value='approve' class='primary'>Authorize</button>
<button type='submit' name='decision' value='deny' class='secondary'>Deny</button>
</div>
</form>
</div>""",
        narrow=True,
    )


def oauth_error_page(message: str) -> str:
    return _page(
        "Authorization error",
        f"<div class='card'><h1>Authorization error</h1>"
        f"<p class='notice error' role='alert'>{escape(message)}</p>"
        f"<p>No redirect was made, because the request could not be trusted.</p>"
        f"<p class='muted'>Registered OAuth clients are listed on the "
        f"<a href='/_sandbox/'>sandbox overview</a>.</p></div>",
        narrow=True,
    )


def overview_page(accounts: list[Account], clients: list[OAuthClient]) -> str:
    sections = []
    for account in accounts:
        members = "".join(
            f"<dt>Email</dt><dd><code>{escape(m.email)}</code></dd>"
            f"<dt>Password</dt><dd><code>{escape(m.password)}</code></dd>"
            for m in account.members.values()
        )
        projects = []
        for project in account.projects.values():
            rows = "".join(
                "<tr>"
                f"<td><a href='{escape(metric_path(project.key, m['key']))}'>"
                f"<code>{escape(m['key'])}</code></a></td><td>{escape(m['name'])}</td>"
                f"<td>{escape(_metric_type(m))}</td><td>{escape(m.get('eventKey', ''))}</td>"
                f"<td>{escape(', '.join(m['tags']))}</td><td>{m['_version']}</td>"
                "</tr>"
                for m in project.metrics.values()
            )
            envs = ", ".join(f"<code>{escape(key)}</code>" for key in project.environments)
            table = (
                "<div class='scroll'><table><tr><th>Key</th><th>Name</th><th>Type</th>"
                f"<th>Event key</th><th>Tags</th><th>Version</th></tr>{rows}</table></div>"
                if rows
                else "<p class='muted'>No metrics yet.</p>"
            )
            projects.append(
                f"<h3>Project <code>{escape(project.key)}</code> {escape(project.name)}</h3>"
                f"<p class='muted'>Environments: {envs}</p>{table}{_groups_list(project)}"
            )
        sections.append(
            f"<section class='card'><h2>{escape(account.name)} "
            f"<small><code>{escape(account.id)}</code></small></h2>"
            f"<p class='muted'>Sign in to this account (on the OAuth consent page) with:</p>"
            f"<dl class='fields sign-in'>{members}</dl>{''.join(projects)}</section>"
        )
    client_rows = "".join(
        f"<li><code>{escape(c.client_id)}</code> {escape(c.name)} → {escape(c.redirect_uri)}</li>"
        for c in clients
    )
    clients_html = f"<ul>{client_rows}</ul>" if client_rows else "<p class='muted'>None.</p>"
    return _page(
        "Overview",
        "<h1>Accounts and metrics</h1>"
        "<p class='muted'>A local stand-in for LaunchDarkly. Everything lives in memory "
        "and is forgotten when the sandbox restarts.</p>"
        f"{_token_form(accounts)}{''.join(sections)}"
        f"<section class='card'><h2>OAuth clients</h2>{clients_html}</section>",
    )


def _groups_list(project: Project) -> str:
    """A project's metric groups, one line each: a funnel's steps in order (→), a
    standard group's metrics (·)."""
    if not project.metric_groups:
        return ""
    items = "".join(
        f"<li><code>{escape(group['key'])}</code> {escape(group['name'])} "
        f"<span class='muted'>({escape(group['kind'])})</span>: "
        + (" → " if group["kind"] == "funnel" else " · ").join(
            f"<code>{escape(member['key'])}</code>" for member in group["metrics"]
        )
        + "</li>"
        for group in project.metric_groups.values()
    )
    return f"<p class='muted'>Metric groups:</p><ul class='groups'>{items}</ul>"


def _token_form(accounts: list[Account]) -> str:
    options = "".join(
        f"<option value='{escape(a.id)}'>{escape(a.name)} ({escape(a.id)})</option>"
        for a in accounts
    )
    return f"""<section class='card' id='create-token'>
<h2>Create an API access token</h2>
<p class='muted'>For the connector's "paste a token" path. A writer token can create
metrics; a reader token can only read.</p>
<form method='post' action='/_sandbox/tokens/new'>
<label for='token-account'>Account</label>
<select id='token-account' name='account_id'>{options}</select>
<label for='token-role'>Role</label>
<select id='token-role' name='role'>
<option value='writer' selected>writer (read and create metrics)</option>
<option value='reader'>reader (read only)</option>
</select>
<label for='token-name'>Name <small>(optional)</small></label>
<input type='text' id='token-name' name='name' placeholder='sandbox writer'>
<div class='actions'><button type='submit' class='primary'>Create token</button></div>
</form>
</section>"""


def token_created_page(token: Token, account: Account) -> str:
    """Shows a new API access token's secret, once (the page is sent with no-store)."""
    return _page(
        "API access token created",
        f"""<div class='card'>
<h1>API access token created</h1>
<p>A <strong>{escape(token.role)}</strong> token <strong>{escape(token.name)}</strong>
for the account <strong>{escape(account.name)}</strong>
<code>{escape(account.id)}</code>.</p>
<p><strong>Your token</strong></p>
<code class='secret' id='token'>{escape(token.secret)}</code>
<p class='notice' role='note' id='token-hint'>{escape(TOKEN_PASTE_HINT)}</p>
<p class='muted'>It is shown only this once; create another one if you lose it. It lasts
until the sandbox restarts or is reset.</p>
<p><a href='/_sandbox/'>Back to the sandbox overview</a></p>
</div>""",
        narrow=True,
    )


def message_page(status_title: str, message: str) -> str:
    """A plain error page (a 404 or a bad form) with a way back to the overview."""
    return _page(
        status_title,
        f"<div class='card'><h1>{escape(status_title)}</h1>"
        f"<p class='notice error' role='alert'>{escape(message)}</p>"
        f"<p><a href='/_sandbox/'>Back to the sandbox overview</a></p></div>",
        narrow=True,
    )


SUCCESS_TEXT = {
    "HigherThanBaseline": "Higher than baseline is better",
    "LowerThanBaseline": "Lower than baseline is better",
}
KIND_TEXT = {"custom": "Custom event", "pageview": "Page viewed", "click": "Clicked or tapped"}


def metric_page(project_key: str, metric_key: str, found: list[tuple[Account, Project]]) -> str:
    """A metric as LaunchDarkly's UI shows it; one card per account holding the key."""
    cards = []
    for account, project in found:
        metric = project.metrics[metric_key]
        cards.append(
            f"<section class='card metric'><h2>{escape(metric.get('name') or metric_key)}</h2>"
            f"<p class='muted'>Account {escape(account.name)} <code>{escape(account.id)}</code>"
            f" · project <code>{escape(project.key)}</code> {escape(project.name)}</p>"
            f"<dl class='fields'>{_metric_fields(account, metric)}</dl></section>"
        )
    return _page(
        f"Metric {metric_key}",
        f"<p><a href='/_sandbox/'>← Back to the sandbox overview</a></p>"
        f"<h1>Metric <code>{escape(metric_key)}</code> in project "
        f"<code>{escape(project_key)}</code></h1>{''.join(cards)}",
    )


def _metric_fields(account: Account, metric: dict[str, Any]) -> str:
    maintainer = account.members.get(metric.get("maintainerId", ""))
    created = metric.get("_creationDate")
    rows = [
        ("Name", metric.get("name")),
        ("Key", metric.get("key")),
        ("Type", _metric_words(metric)),
        ("Event key", metric.get("eventKey")),
        ("Success criteria", SUCCESS_TEXT.get(metric.get("successCriteria") or "")),
        ("Unit", metric.get("unit")),
        ("Randomization units", ", ".join(metric.get("randomizationUnits") or [])),
        ("Tags", ", ".join(metric.get("tags") or [])),
        (
            "Maintainer",
            f"{maintainer.first_name} {maintainer.last_name} ({maintainer.email})"
            if maintainer
            else metric.get("maintainerId"),
        ),
        ("Version", str(metric["_version"]) if "_version" in metric else None),
        (
            "Created",
            datetime.fromtimestamp(created / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
            if isinstance(created, int | float)
            else None,
        ),
        ("Description", metric.get("description")),
    ]
    blank = "<span class='muted'>—</span>"
    return "".join(
        f"<dt>{escape(label)}</dt><dd>{escape(value) if value else blank}</dd>"
        for label, value in rows
    )


def _metric_words(metric: dict[str, Any]) -> str:
    kind = KIND_TEXT.get(metric["kind"], metric["kind"])
    if metric["kind"] != "custom":
        return kind
    if metric.get("isNumeric"):
        aggregation = "sum" if metric.get("unitAggregationType") == "sum" else "average"
        words = f"{kind}, numeric: the {aggregation} of each unit's event values"
        if metric.get("analysisType") == "percentile":
            words += f", analysed at percentile {metric.get('percentileValue')}"
        return words
    if metric.get("unitAggregationType") == "sum":
        return f"{kind}, conversion (count): how many times each unit sent the event"
    return f"{kind}, conversion (binary): whether each unit sent the event at least once"


def _metric_type(metric: dict) -> str:
    if metric["kind"] != "custom":
        return metric["kind"]
    if metric.get("isNumeric"):
        return f"numeric ({metric.get('unit', '')})"
    return "conversion count" if metric.get("unitAggregationType") == "sum" else "conversion binary"
