"""The sandbox's few HTML pages: OAuth sign-in + consent, OAuth errors, an overview.

Plain server-rendered forms without JavaScript, so browser tests can drive them and a
person can read them. Every value is escaped.
"""

from __future__ import annotations

from html import escape

from sandbox.state import Account, OAuthClient

STYLE = """
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
.card{border:1px solid #ccc;border-radius:8px;padding:1.5rem}
label{display:block;margin:.75rem 0 .25rem}
input[type=email],input[type=password]{width:100%;padding:.4rem}
button{margin:1rem .5rem 0 0;padding:.5rem 1rem}
.error{color:#b00020}
table{border-collapse:collapse;width:100%;margin-bottom:1rem}
td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;font-size:.9rem}
"""

SCOPE_TEXT = {
    "reader": "read your LaunchDarkly account's projects, environments and metrics",
    "writer": "read and change your LaunchDarkly account's projects, environments and metrics",
}


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><p><strong>LaunchDarkly sandbox</strong></p>{body}</body></html>"
    )


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
    error_html = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    return _page(
        f"Authorize {client.name}",
        f"""<div class='card'>
<h1>Authorize {escape(client.name)}</h1>
<p><strong>{escape(client.name)}</strong> wants to access your LaunchDarkly account
with the scope:</p>
<ul>{scopes}</ul>
<p>After you approve, you will be sent to <code>{escape(client.redirect_uri)}</code>.</p>
{error_html}
<form method='post' action='/trust/oauth/authorize'>
{fields}
<label for='email'>Email</label>
<input type='email' id='email' name='email' value='{escape(email)}' autocomplete='username'>
<label for='password'>Password</label>
<input type='password' id='password' name='password' autocomplete='current-password'>
<button type='submit' name='decision' value='approve'>Authorize</button>
<button type='submit' name='decision' value='deny'>Deny</button>
</form>
</div>""",
    )


def oauth_error_page(message: str) -> str:
    return _page(
        "Authorization error",
        f"<div class='card'><h1>Authorization error</h1>"
        f"<p class='error' role='alert'>{escape(message)}</p>"
        f"<p>No redirect was made, because the request could not be trusted.</p></div>",
    )


def overview_page(accounts: list[Account], clients: list[OAuthClient]) -> str:
    sections = []
    for account in accounts:
        members = ", ".join(
            f"{escape(m.email)} / {escape(m.password)}" for m in account.members.values()
        )
        projects = []
        for project in account.projects.values():
            rows = "".join(
                "<tr>"
                f"<td><code>{escape(m['key'])}</code></td><td>{escape(m['name'])}</td>"
                f"<td>{escape(_metric_type(m))}</td><td>{escape(m.get('eventKey', ''))}</td>"
                f"<td>{escape(', '.join(m['tags']))}</td><td>{m['_version']}</td>"
                "</tr>"
                for m in project.metrics.values()
            )
            envs = ", ".join(escape(key) for key in project.environments)
            table = (
                "<table><tr><th>Key</th><th>Name</th><th>Type</th><th>Event key</th>"
                f"<th>Tags</th><th>Version</th></tr>{rows}</table>"
                if rows
                else "<p>No metrics yet.</p>"
            )
            projects.append(
                f"<h3>Project <code>{escape(project.key)}</code> ({escape(project.name)})</h3>"
                f"<p>Environments: {envs}</p>{table}"
            )
        sections.append(
            f"<section><h2>{escape(account.name)} <small><code>{escape(account.id)}</code>"
            f"</small></h2><p>Sign-in: {members}</p>{''.join(projects)}</section>"
        )
    client_rows = "".join(
        f"<li><code>{escape(c.client_id)}</code> {escape(c.name)} → {escape(c.redirect_uri)}</li>"
        for c in clients
    )
    return _page(
        "LaunchDarkly sandbox",
        f"<h1>Accounts and metrics</h1>{''.join(sections)}"
        f"<h2>OAuth clients</h2><ul>{client_rows}</ul>",
    )


def _metric_type(metric: dict) -> str:
    if metric["kind"] != "custom":
        return metric["kind"]
    if metric.get("isNumeric"):
        return f"numeric ({metric.get('unit', '')})"
    return "conversion count" if metric.get("unitAggregationType") == "sum" else "conversion binary"
