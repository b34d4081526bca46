"""The docs cannot drift from the code: generated tables match, every field is described, and the
README's layout names every package and module."""

from __future__ import annotations

import re

import pytest

from ingest_assets import docs
from ingest_assets.settings import Settings

PACKAGE = docs.PROJECT / "ingest_assets"


@pytest.mark.parametrize("document", docs.DOCUMENTS)
def test_generated_sections_match_the_code(document: str) -> None:
    path = docs.PROJECT / document
    text = path.read_text()
    assert "<!-- BEGIN " in text, f"{document} has no generated section"
    assert docs.render(text) == text, f"{document} is stale: run python -m ingest_assets.docs"


@pytest.mark.parametrize(
    "model", [*docs.CATALOG_MODELS.values(), Settings], ids=lambda m: m.__name__
)
def test_every_field_has_a_description(model) -> None:
    missing = [name for name, info in model.model_fields.items() if not info.description]
    assert missing == []


def test_every_catalog_field_is_in_a_generated_table() -> None:
    catalog = (docs.PROJECT / "docs/catalog.md").read_text()
    for model in docs.CATALOG_MODELS.values():
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in catalog, f"{model.__name__}.{name}"


def test_a_stale_section_is_rewritten() -> None:
    stale = "<!-- BEGIN settings -->\n| variable |\n<!-- END -->\n"
    assert "`NASS_API_KEY`" in docs.render(stale) and docs.render(stale) != stale


def test_the_readme_layout_names_every_package_and_module() -> None:
    readme = (docs.PROJECT / "README.md").read_text()
    layout = re.search(r"## Layout\n+```\n(.*?)```", readme, re.S)
    assert layout is not None
    listed = layout.group(1)
    folders = sorted(p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)
    modules = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    missing = [f"{f.name}/" for f in folders if f"{f.name}/" not in listed]
    missing += [m.name for m in modules if m.name not in listed]
    assert missing == []
