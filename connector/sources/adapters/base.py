"""What a source adapter is, and the registry that finds one by name.

An adapter only reads a catalog from somewhere else and describes each event as an
`EventDefinition`; storing goes through `services.catalog_import`, the same upsert
path as the API and uploads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from connector.sources.models import ValueKind


@dataclass(frozen=True)
class EventDefinition:
    key: str
    name: str = ""
    description: str = ""
    value_kind: str = ValueKind.CONVERSION
    unit: str = ""
    # A default: `catalog_import` never lets it replace a stored value_property.
    value_property: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    volume: int | None = None

    def as_definition(self) -> dict[str, Any]:
        """The dict the upsert validates, as an API client would send it."""
        definition: dict[str, Any] = {"key": self.key, "value_kind": str(self.value_kind)}
        if self.name:
            definition["name"] = self.name
        if self.description:
            definition["description"] = self.description
        if self.unit:
            definition["unit"] = self.unit
        if self.value_property:
            definition["value_property"] = self.value_property
        if self.first_seen:
            definition["first_seen"] = self.first_seen.isoformat()
        if self.last_seen:
            definition["last_seen"] = self.last_seen.isoformat()
        if self.volume is not None:
            definition["volume"] = self.volume
        return definition


class AdapterError(Exception):
    """The source could not be read; nothing was imported. The message is for people."""


@runtime_checkable
class SourceAdapter(Protocol):
    #: The `Origin` value stored on the events this adapter brings.
    origin: str

    def fetch_catalog(self) -> Iterable[EventDefinition]:
        """Every event the source knows now. Raise `AdapterError` if it cannot."""
        ...


REGISTRY: dict[str, Callable[..., SourceAdapter]] = {}


def register(name: str) -> Callable[[Callable[..., SourceAdapter]], Callable[..., SourceAdapter]]:
    def decorator(factory: Callable[..., SourceAdapter]) -> Callable[..., SourceAdapter]:
        REGISTRY[name] = factory
        return factory

    return decorator


def adapter_for(name: str, **options: Any) -> SourceAdapter:
    # Importing the modules fills the registry; one module per source.
    from connector.sources.adapters import posthog  # noqa: F401

    try:
        factory = REGISTRY[name]
    except KeyError:
        raise AdapterError(f"No source adapter named {name!r}; known: {sorted(REGISTRY)}") from None
    return factory(**options)
