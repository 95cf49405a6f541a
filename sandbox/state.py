"""The sandbox's in-memory world: accounts, members, projects, metrics, tokens, OAuth.

Deliberately not the Django database: the sandbox stands in for another company's
service, so it keeps its own state in its own process and forgets it on restart or
`POST /_sandbox/reset`. One re-entrant lock guards everything; handlers hold it for
the whole read-modify-write of a request, which keeps the model simple and is far
below the contention that would matter at a few thousand requests per second.

Seeded ids are deterministic so a connector configured against one sandbox run
(say, a stored account id) still matches after a restart.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

DEMO_ACCOUNT_NAME = "Demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "sandbox-demo"
SEEDED_PROJECTS = (("default", "Default project"), ("mobile-app", "Mobile app"))
SEEDED_ENVIRONMENTS = (
    ("production", "Production", "417505", True),
    ("test", "Test", "F5A623", False),
)
SEEDED_CONTEXT_KINDS = (
    ("user", "User", "default"),
    ("organization", "Organization", "manual"),
    ("device", "Device", "manual"),
)
REQUEST_LOG_SIZE = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


def object_id(seed: str | None = None) -> str:
    """A 24-hex id like LaunchDarkly's (Mongo ObjectId style); deterministic when seeded."""
    if seed is None:
        return secrets.token_hex(12)
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "account"


@dataclass
class Member:
    id: str
    email: str
    password: str
    first_name: str
    last_name: str
    role: str
    created: int


@dataclass
class Environment:
    id: str
    key: str
    name: str
    color: str
    critical: bool
    sdk_key: str
    mobile_key: str


@dataclass
class ContextKind:
    key: str
    name: str
    created_from: str
    created: int


@dataclass
class MetricUsage:
    """Where a metric is used: experiments, guarded rollouts and metric groups live
    outside the sandbox, so tests set these counts through the control surface."""

    experiments: int = 0  # ever
    active_experiments: int = 0
    guarded_rollouts: int = 0  # ever
    active_guarded_rollouts: int = 0
    metric_groups: int = 0

    @property
    def connected(self) -> bool:
        return bool(self.experiments or self.guarded_rollouts or self.metric_groups)


@dataclass
class MetricGroupUsage:
    """Where a metric group is used: experiments and guarded rollouts live outside the
    sandbox, so tests set these counts (`/_sandbox/metric-group-usage`)."""

    experiments: int = 0  # ever
    active_experiments: int = 0
    active_guarded_rollouts: int = 0

    @property
    def connected(self) -> bool:
        return bool(self.experiments or self.active_guarded_rollouts)


@dataclass
class Project:
    id: str
    key: str
    name: str
    created: int = 0
    environments: dict[str, Environment] = field(default_factory=dict)
    context_kinds: dict[str, ContextKind] = field(default_factory=dict)
    # metric key -> stored representation (the MetricRep body, without `_links`)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Experimentation settings: registered units as RandomizationUnitRep bodies
    # ({randomizationUnit, default, _hidden, _displayName}), exactly one default.
    randomization_units: list[dict[str, Any]] = field(default_factory=list)
    # metric key -> usage; kept apart from `metrics` so no patch can reach it
    usage: dict[str, MetricUsage] = field(default_factory=dict)
    # metric key -> patchMetric calls still to lose a race (see Control.set_races)
    races: dict[str, int] = field(default_factory=dict)
    # metric group key -> stored group: MetricGroupPost's fields (metrics as
    # [{key, nameInGroup}], in order) plus _id, _version, _creationDate, _lastModified
    metric_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # metric group key -> usage; apart from `metric_groups` so no patch can reach it
    group_usage: dict[str, MetricGroupUsage] = field(default_factory=dict)

    def default_randomization_unit(self) -> str:
        return next(
            (u["randomizationUnit"] for u in self.randomization_units if u["default"]), "user"
        )

    def groups_with_metric(self, metric_key: str) -> list[dict[str, Any]]:
        return [
            group
            for group in self.metric_groups.values()
            if any(member["key"] == metric_key for member in group["metrics"])
        ]

    def metric_usage(self, metric_key: str) -> MetricUsage:
        """A metric's usage as LaunchDarkly counts it: what the control surface set, plus
        the sandbox's own metric groups that hold the metric."""
        usage = self.usage.get(metric_key, MetricUsage())
        in_groups = len(self.groups_with_metric(metric_key))
        return replace(usage, metric_groups=usage.metric_groups + in_groups)


@dataclass
class Account:
    id: str
    name: str
    members: dict[str, Member] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)

    @property
    def owner(self) -> Member:
        return next(iter(self.members.values()))


@dataclass
class Token:
    """An API access token or an OAuth access token: what a request authenticates as."""

    id: str
    secret: str
    account_id: str
    member_id: str | None  # None for service tokens, which act as no member
    role: str  # reader | writer | no_access (a token that only has its inline role)
    # Policy statements {effect, actions, resources}, as LaunchDarkly's `inlineRole`.
    inline_role: list[dict[str, Any]] = field(default_factory=list)
    service: bool = False
    name: str = ""
    client_id: str | None = None  # set for OAuth access tokens
    grant_id: str | None = None  # OAuth grant family, for revocation
    expires_at: float | None = None
    revoked: bool = False
    created: int = field(default_factory=now_ms)
    creator_id: str = ""  # the member who created it (a service token's too)

    @property
    def is_oauth(self) -> bool:
        return self.client_id is not None

    @property
    def permissions(self) -> tuple[str, ...]:
        """The actions the inline role allows (deny statements only narrow LaunchDarkly's
        built-in roles, which the sandbox does not model action by action)."""
        return tuple(
            action
            for statement in self.inline_role
            if statement.get("effect") == "allow"
            for action in statement.get("actions", [])
        )

    def usable(self, at: float) -> bool:
        return not self.revoked and (self.expires_at is None or at < self.expires_at)


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uri: str
    name: str
    seeded: bool = False  # survives reset


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    scope: str
    account_id: str
    member_id: str
    code_challenge: str | None
    expires_at: float
    grant_id: str
    used: bool = False


@dataclass
class RefreshToken:
    secret: str
    client_id: str
    scope: str
    account_id: str
    member_id: str
    grant_id: str
    used: bool = False
    revoked: bool = False


@dataclass
class Limits:
    global_per_window: int | None = None
    route_per_window: int | None = None
    retry_after_mode: bool = False


@dataclass
class Faults:
    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    latency_ms: int = 0
    slow_ms: int = 30_000


@dataclass(frozen=True)
class OAuthClientSeed:
    client_id: str
    client_secret: str
    redirect_uri: str
    name: str = "Metric connector"


@dataclass(frozen=True)
class SandboxOptions:
    """Start-up options: the command-line flags of `manage.py ldsandbox`."""

    token_ttl: float = 3600
    code_ttl: float = 600
    rate_window_s: float = 10.0  # LaunchDarkly: limits are per 10-second window
    oauth_client: OAuthClientSeed | None = None
    # LaunchDarkly's refresh answers carry a new refresh token; RFC 6749 §6 lets a server
    # leave it out, and then the client keeps the one it has. Off tests that client.
    rotate_refresh_tokens: bool = True


class SandboxState:
    """Everything the sandbox knows. Callers hold `lock` around reads and writes."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.lock = threading.RLock()
        self.request_seq = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.reset()

    def reset(self) -> None:
        """Back to the seeded world; the request sequence keeps counting up."""
        with self.lock:
            self.accounts: dict[str, Account] = {}
            self.tokens: dict[str, Token] = {}
            self.oauth_clients: dict[str, OAuthClient] = {}
            self.auth_codes: dict[str, AuthCode] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.limits = Limits()
            self.faults = Faults()
            # (account id, project, environment, event key) -> count
            self.event_counts: dict[tuple[str, str, str, str], int] = {}
            # (account id, project, metric key) -> events counted for that metric: its
            # event key and its filter matched (see EventImport)
            self.metric_event_counts: dict[tuple[str, str, str], int] = {}
            # (account id, project, environment, payload id)
            self.event_payloads: set[tuple[str, str, str, str]] = set()
            self.duplicate_payloads = 0
            self.dropped_events: dict[str, int] = {}  # reason -> events accepted, then dropped
            self.requests.clear()
            self.demo_account = self.create_account(
                DEMO_ACCOUNT_NAME, email=DEMO_EMAIL, seed="demo", extra_projects=True
            )
            if self.options.oauth_client is not None:
                seed = self.options.oauth_client
                self.oauth_clients[seed.client_id] = OAuthClient(
                    seed.client_id, seed.client_secret, seed.redirect_uri, seed.name, seeded=True
                )

    # --- accounts ---------------------------------------------------------------

    def create_account(
        self,
        name: str,
        *,
        email: str | None = None,
        seed: str | None = None,
        extra_projects: bool = False,
    ) -> Account:
        created = now_ms()

        def oid(part: str) -> str:
            return object_id(f"{seed}:{part}" if seed else None)

        account = Account(id=oid("account"), name=name)
        member = Member(
            id=oid("member"),
            email=email or f"{slug(name)}-{account.id[:6]}@example.com",
            password=DEMO_PASSWORD,
            first_name=name,
            last_name="Owner",
            role="owner",
            created=created,
        )
        account.members[member.id] = member
        for key, project_name in SEEDED_PROJECTS if extra_projects else SEEDED_PROJECTS[:1]:
            project = Project(id=oid(f"project:{key}"), key=key, name=project_name, created=created)
            for env_key, env_name, color, critical in SEEDED_ENVIRONMENTS:
                env_id = oid(f"env:{key}:{env_key}")
                project.environments[env_key] = Environment(
                    id=env_id,
                    key=env_key,
                    name=env_name,
                    color=color,
                    critical=critical,
                    sdk_key=f"sdk-{uuid.uuid5(uuid.NAMESPACE_OID, env_id)}",
                    mobile_key=f"mob-{uuid.uuid5(uuid.NAMESPACE_URL, env_id)}",
                )
            for kind_key, kind_name, created_from in SEEDED_CONTEXT_KINDS:
                project.context_kinds[kind_key] = ContextKind(
                    kind_key, kind_name, created_from, created
                )
            # Only `user` is registered for experiments: a metric naming another kind
            # is refused until someone registers it, as at LaunchDarkly.
            project.randomization_units = [
                {
                    "randomizationUnit": "user",
                    "default": True,
                    "_hidden": False,
                    "_displayName": "User",
                }
            ]
            account.projects[key] = project
        with self.lock:
            self.accounts[account.id] = account
        return account

    # --- tokens -----------------------------------------------------------------

    def mint_token(
        self,
        account: Account,
        *,
        role: str,
        permissions: tuple[str, ...] = (),
        inline_role: list[dict[str, Any]] | None = None,
        service: bool = False,
        name: str = "",
        member_id: str | None = None,
        client_id: str | None = None,
        grant_id: str | None = None,
        ttl: float | None = None,
    ) -> Token:
        """`permissions` is shorthand for one inline-role statement allowing those
        actions on every environment of every project."""
        prefix = "ldo-at-" if client_id else "api-"
        statements = [dict(statement) for statement in inline_role or []]
        if permissions:
            statements.append(
                {"effect": "allow", "actions": list(permissions), "resources": ["proj/*:env/*"]}
            )
        creator_id = member_id or account.owner.id
        token = Token(
            id=object_id(),
            secret=prefix + secrets.token_urlsafe(24),
            account_id=account.id,
            member_id=None if service else creator_id,
            role=role,
            inline_role=statements,
            service=service,
            creator_id=creator_id,
            name=name,
            client_id=client_id,
            grant_id=grant_id,
            expires_at=time.time() + ttl if ttl is not None else None,
        )
        with self.lock:
            self.tokens[token.secret] = token
        return token

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke every access and refresh token issued under one OAuth authorization."""
        with self.lock:
            for token in self.tokens.values():
                if token.grant_id == grant_id:
                    token.revoked = True
            for refresh in self.refresh_tokens.values():
                if refresh.grant_id == grant_id:
                    refresh.revoked = True

    def revoke(self, secret: str) -> bool:
        """Revoke an API token, or an OAuth access/refresh token with its whole grant."""
        with self.lock:
            token = self.tokens.get(secret)
            refresh = self.refresh_tokens.get(secret)
            grant_id = (token and token.grant_id) or (refresh and refresh.grant_id)
            if grant_id:
                self.revoke_grant(grant_id)
            elif token:
                token.revoked = True
            return bool(token or refresh)

    # --- request log ------------------------------------------------------------

    def log_request(self, entry: dict[str, Any]) -> int:
        with self.lock:
            self.request_seq += 1
            entry["seq"] = self.request_seq
            self.requests.append(entry)
            return self.request_seq
