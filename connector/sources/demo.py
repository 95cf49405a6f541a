"""A realistic demo catalog for `make run`: about 300 events of a commerce and SaaS
product, with the key styles real products use (snake_case, dotted, "Title Case",
PostHog-style `$` events, paths after a colon).

Deterministic: the same day gives the same catalog, so seeding twice changes nothing.
Dates are anchored to today (UTC midnight) so "seen in the last N days" filters
show something sensible whenever the demo is started.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.sources.models import Origin
from connector.sources.services import MAX_BATCH, counts_of, events_upsert

SEED = 20260131

# (key, name, description, unit or None for conversions)
_CORE: list[tuple[str, str, str, str | None]] = [
    ("signup_completed", "Sign-up completed", "A visitor created an account.", None),
    ("trial_started", "Trial started", "A workspace started its 14-day trial.", None),
    ("subscription_started", "Subscription started", "First paid invoice settled.", None),
    ("subscription_upgraded", "Subscription upgraded", "Moved to a higher plan.", None),
    ("subscription_cancelled", "Subscription cancelled", "Cancelled at period end.", None),
    ("checkout.completed", "Checkout completed", "Order placed and paid.", None),
    ("checkout.revenue", "Checkout revenue", "Order total after discounts.", "USD"),
    ("order.refunded", "Order refunded", "Refund issued for an order.", "USD"),
    ("cart.value", "Cart value", "Cart total when checkout starts.", "USD"),
    ("Added to Cart", "Added to cart", "A product was added to the cart.", None),
    ("Product Viewed", "Product viewed", "A product detail page was shown.", None),
    ("search.performed", "Search performed", "A search returned results.", None),
    ("search.latency", "Search latency", "Time to first result.", "ms"),
    ("page.load_time", "Page load time", "Largest contentful paint.", "ms"),
    ("api.request_duration", "API request duration", "Server time per API call.", "ms"),
    ("$pageview", "Page view", "PostHog's automatic page view.", None),
    ("$autocapture", "Autocapture", "Clicks and form submits captured automatically.", None),
    ("page_view:/pricing", "Pricing page viewed", "The pricing page was opened.", None),
    ("page_view:/checkout", "Checkout page viewed", "The checkout page was opened.", None),
    ("invite.sent", "Invitation sent", "A member invited a colleague.", None),
    ("invite.accepted", "Invitation accepted", "An invited colleague joined.", None),
    ("report.exported", "Report exported", "A report was exported to CSV or PDF.", None),
    ("session.duration", "Session duration", "Time between first and last event.", "s"),
    ("support.ticket_opened", "Support ticket opened", "A customer asked for help.", None),
    ("nps.score", "NPS score", "Answer to the recommendation survey.", "points"),
    ("onboarding/step_completed", "Onboarding step completed", "Any onboarding step.", None),
    ("onboarding/finished", "Onboarding finished", "All onboarding steps done.", None),
    ("file.uploaded", "File uploaded", "A file was uploaded.", None),
    ("file.upload_size", "File upload size", "Size of uploaded files.", "MB"),
    ("coupon.applied", "Coupon applied", "A discount code was accepted.", None),
]

_AREAS = [
    ("dashboard", "Dashboard"),
    ("billing", "Billing"),
    ("settings", "Settings"),
    ("editor", "Editor"),
    ("reports", "Reports"),
    ("integrations", "Integrations"),
    ("mobile", "Mobile app"),
    ("catalog", "Catalog"),
    ("wishlist", "Wishlist"),
    ("notifications", "Notifications"),
    ("team", "Team"),
    ("search", "Search"),
]
_ACTIONS = [
    ("opened", "opened", None),
    ("button_clicked", "button clicked", None),
    ("item_created", "item created", None),
    ("item_deleted", "item deleted", None),
    ("shared", "shared", None),
    ("filter_applied", "filter applied", None),
    ("error_shown", "error shown", None),
    ("help_opened", "help opened", None),
    ("time_spent", "time spent", "s"),
    ("render_time", "render time", "ms"),
    ("items_count", "items per visit", "items"),
    ("feedback_given", "feedback given", None),
    ("tour_completed", "tour completed", None),
    ("export_clicked", "export clicked", None),
    ("settings_changed", "settings changed", None),
    ("upgrade_prompt_seen", "upgrade prompt seen", None),
    ("upgrade_prompt_clicked", "upgrade prompt clicked", None),
    ("keyboard_shortcut_used", "keyboard shortcut used", None),
    ("dark_mode_toggled", "dark mode toggled", None),
    ("revenue_attributed", "revenue attributed", "USD"),
    ("empty_state_seen", "empty state seen", None),
    ("bulk_action_used", "bulk action used", None),
]


def demo_catalog(*, today: datetime | None = None) -> list[dict[str, Any]]:
    """About 300 definitions, as an API client would send them."""
    rng = random.Random(SEED)
    today = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    entries = list(_CORE)
    for area, area_name in _AREAS:
        for action, action_name, unit in _ACTIONS:
            entries.append(
                (
                    f"{area}.{action}",
                    f"{area_name}: {action_name}",
                    f"{area_name} area, {action_name}.",
                    unit,
                )
            )
    definitions = []
    for key, name, description, unit in entries:
        first = today - timedelta(days=rng.randint(30, 720), hours=rng.randint(0, 23))
        # Most events are current; about one in ten has not been seen for months.
        last_gap = rng.randint(60, 200) if rng.random() < 0.1 else rng.randint(0, 6)
        last = max(first, today - timedelta(days=last_gap, hours=rng.randint(0, 23)))
        volume = 0 if last_gap >= 30 else int(rng.lognormvariate(8, 2))
        definition: dict[str, Any] = {
            "key": key,
            "name": name,
            "description": description,
            "value_kind": "numeric" if unit else "conversion",
            "first_seen": first.isoformat(),
            "last_seen": last.isoformat(),
            "volume": volume,
        }
        if unit:
            definition["unit"] = unit
        definitions.append(definition)
    return definitions


def seed_demo_catalog(*, today: datetime | None = None) -> dict[str, int]:
    """Upsert the demo catalog into the workspace in scope (idempotent)."""
    definitions = demo_catalog(today=today)
    results = []
    for start in range(0, len(definitions), MAX_BATCH):
        results += events_upsert(
            definitions=definitions[start : start + MAX_BATCH], origin=Origin.DEMO, via="demo"
        )
    return counts_of(results)
