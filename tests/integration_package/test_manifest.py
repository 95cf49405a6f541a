"""Checks for the LaunchDarkly integration-framework package in ``integration/``.

The manifest is validated against a vendored, unchanged copy of the framework's bundled
schema (``integration/schema/manifest.schema.json``), plus the extra rules that the
framework's ``__tests__/validateIntegrationManifests.js`` enforces. The logos are checked
to be safe, self-contained SVG. No database is needed.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "integration"
MANIFEST_PATH = PACKAGE_DIR / "manifest.json"
SCHEMA_PATH = PACKAGE_DIR / "schema" / "manifest.schema.json"

SVG_NS = "{http://www.w3.org/2000/svg}"
HREF_ATTRS = {"href", "{http://www.w3.org/1999/xlink}href"}
# url(...) in style/attributes that points anywhere other than a local fragment (#id).
EXTERNAL_URL_RE = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.IGNORECASE)


def load_manifest() -> dict[str, Any]:
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def svg_errors(path: Path) -> list[str]:
    """Problems with one logo file: not XML, not <svg>, no viewBox, scripts, external refs."""
    text = path.read_text(encoding="utf-8")
    errors: list[str] = []
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        errors.append(f"{path.name}: DOCTYPE/ENTITY declarations are not allowed")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return [*errors, f"{path.name}: not well-formed XML ({exc})"]
    if root.tag != f"{SVG_NS}svg":
        errors.append(f"{path.name}: root element is {root.tag!r}, not an SVG <svg>")
    if not root.get("viewBox"):
        errors.append(f"{path.name}: <svg> has no viewBox")
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local.lower() in {"script", "foreignobject"}:
            errors.append(f"{path.name}: <{local}> is not allowed")
        for name, value in element.attrib.items():
            if name in HREF_ATTRS and not value.startswith("#"):
                errors.append(f"{path.name}: external reference {value!r} on <{local}>")
            if name.lower().startswith("on"):
                errors.append(f"{path.name}: event handler attribute {name!r} on <{local}>")
            if EXTERNAL_URL_RE.search(value):
                errors.append(f"{path.name}: external url() in {name!r} on <{local}>")
        style = (element.text or "") if local == "style" else ""
        if EXTERNAL_URL_RE.search(style) or "@import" in style:
            errors.append(f"{path.name}: external reference in <style>")
    return errors


def manifest_errors(manifest: dict[str, Any], base_dir: Path = PACKAGE_DIR) -> list[str]:
    """Every reason the integration framework would reject this manifest (empty if none)."""
    validator = Draft7Validator(load_schema(), format_checker=FormatChecker())
    errors = [
        f"schema: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    ]

    # Extra rules from the framework's __tests__/validateIntegrationManifests.js.
    icons = manifest.get("icons")
    if isinstance(icons, dict):
        for kind, rel_path in icons.items():
            icon = base_dir / str(rel_path)
            if not icon.is_file():
                errors.append(f"icons.{kind}: file {rel_path!r} does not exist")
            elif icon.suffix == ".svg":
                errors.extend(f"icons.{kind}: {msg}" for msg in svg_errors(icon))

    overview = manifest.get("overview")
    if isinstance(overview, str) and not overview.endswith("."):
        errors.append("overview: must end with a period")

    if manifest.get("requiresOAuth"):
        key = manifest.get("oauthIntegrationKey")
        if not isinstance(key, str) or not 3 <= len(key) <= 100:
            errors.append("oauthIntegrationKey: requiresOAuth needs a key of 3-100 characters")

    if not manifest.get("capabilities") and not manifest.get("otherCapabilities"):
        errors.append("otherCapabilities: needed when there are no capabilities")

    return errors


# --- the real package -------------------------------------------------------------------


def test_manifest__vendored_schema__is_valid_draft7() -> None:
    schema = load_schema()
    Draft7Validator.check_schema(schema)
    assert schema["$schema"].startswith("http://json-schema.org/draft-07/schema")
    assert "$ref" not in SCHEMA_PATH.read_text(encoding="utf-8")  # bundled: no external refs


def test_manifest__schema__valid() -> None:
    validator = Draft7Validator(load_schema(), format_checker=FormatChecker())
    errors = [e.message for e in validator.iter_errors(load_manifest())]
    assert errors == []


def test_manifest__all_rules__pass() -> None:
    assert manifest_errors(load_manifest()) == []


def test_manifest__version__matches_package_version() -> None:
    assert load_manifest()["version"] == importlib.metadata.version("ld-metric-connector")


def test_manifest__icons__exist() -> None:
    icons = load_manifest()["icons"]
    assert icons == {
        "square": "assets/images/square.svg",
        "horizontal": "assets/images/horizontal.svg",
    }
    for rel_path in icons.values():
        assert (PACKAGE_DIR / rel_path).is_file(), rel_path


def test_manifest__overview__ends_with_period() -> None:
    assert load_manifest()["overview"].endswith(".")


def test_manifest__oauth__key_and_flag() -> None:
    manifest = load_manifest()
    assert manifest["requiresOAuth"] is True
    key = manifest["oauthIntegrationKey"]
    assert 3 <= len(key) <= 100
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", key), "use dash-case like the framework"


def test_manifest__other_capabilities__external_without_capabilities() -> None:
    manifest = load_manifest()
    assert "capabilities" not in manifest
    assert manifest["otherCapabilities"] == ["external"]


def test_manifest__links__https() -> None:
    links = load_manifest()["links"]
    assert {"site", "privacyPolicy"} <= links.keys()
    for url in links.values():
        assert url.startswith("https://"), url


@pytest.mark.parametrize("kind", ["square", "horizontal"])
def test_manifest__svg__safe_xml_with_viewbox(kind: str) -> None:
    path = PACKAGE_DIR / load_manifest()["icons"][kind]
    assert svg_errors(path) == []
    root = ET.parse(path).getroot()
    width, height = (float(v) for v in root.get("viewBox", "").split()[2:])
    if kind == "square":
        assert width == height, "the square logo must have a square viewBox"
    else:
        assert width > 2 * height, "the horizontal logo must be wide"


# --- the validator can fail -------------------------------------------------------------


def _without(key: str) -> Any:
    def mutate(m: dict[str, Any]) -> None:
        del m[key]

    return mutate


def _set(key: str, value: Any) -> Any:
    def mutate(m: dict[str, Any]) -> None:
        m[key] = value

    return mutate


def _set_icon(kind: str, value: str) -> Any:
    def mutate(m: dict[str, Any]) -> None:
        m["icons"][kind] = value

    return mutate


BROKEN_MANIFESTS = {
    "missing icons": (_without("icons"), "icons"),
    "png icon": (_set_icon("square", "assets/images/square.png"), "icons"),
    "icon file missing": (_set_icon("horizontal", "assets/images/nope.svg"), "does not exist"),
    "version 1.0": (_set("version", "1.0"), "version"),
    "unknown top-level key": (_set("homepage", "https://connector.example.com"), "homepage"),
    "overview without period": (
        _set("overview", "Turn Acme product events into LaunchDarkly metrics"),
        "period",
    ),
    "bad category": (_set("categories", ["metrics"]), "categories"),
    "bad support email": (_set("supportEmail", "not-an-email"), "supportEmail"),
    "short oauth key": (_set("oauthIntegrationKey", "ac"), "oauthIntegrationKey"),
    "no capabilities at all": (_without("otherCapabilities"), "otherCapabilities"),
}


@pytest.mark.parametrize("case", list(BROKEN_MANIFESTS))
def test_manifest__broken_copies__rejected(case: str) -> None:
    mutate, expected = BROKEN_MANIFESTS[case]
    manifest = copy.deepcopy(load_manifest())
    mutate(manifest)
    errors = manifest_errors(manifest)
    assert errors, f"{case!r} was accepted"
    assert any(expected in error for error in errors), errors


BROKEN_SVGS = {
    "script": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40">'
        "<script>alert(1)</script></svg>",
        "<script>",
    ),
    "external href": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40">'
        '<image href="https://example.com/logo.png" width="40" height="40"/></svg>',
        "external reference",
    ),
    "external xlink href": (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' viewBox="0 0 40 40"><use xlink:href="other.svg#mark"/></svg>',
        "external reference",
    ),
    "style import": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40">'
        "<style>@import 'https://example.com/font.css';</style></svg>",
        "<style>",
    ),
    "no viewBox": (
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"></svg>',
        "viewBox",
    ),
    "not svg root": ('<html viewBox="0 0 40 40"></html>', "root element"),
    "malformed xml": ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40">', "XML"),
}


@pytest.mark.parametrize("case", list(BROKEN_SVGS))
def test_manifest__broken_svgs__rejected(case: str, tmp_path: Path) -> None:
    content, expected = BROKEN_SVGS[case]
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "logo.svg").write_text(content, encoding="utf-8")
    manifest = copy.deepcopy(load_manifest())
    manifest["icons"] = {"square": "assets/logo.svg", "horizontal": "assets/logo.svg"}
    errors = manifest_errors(manifest, base_dir=tmp_path)
    assert any(expected in error for error in errors), errors
