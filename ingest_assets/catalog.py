"""The dataset catalog: ``datasets.yaml`` (or ``$INGEST_DATASETS``) validated into models.

Datasets are declared, not coded. Each entry is validated by its source kind's pydantic model
when the definitions load; every mistake is reported at once, each naming the entry and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union, cast

import yaml
from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from ingest_assets.errors import CatalogError
from ingest_assets.kinds.base import DatasetConfig
from ingest_assets.kinds.registry import SOURCE_KINDS
from ingest_assets.request_budget import HostBudget, parse_budgets
from ingest_assets.settings import current_settings

DEFAULT_CATALOG = "datasets.yaml"


def catalog_path() -> Path:
    """``$INGEST_DATASETS``, else ``datasets.yaml`` in the working directory or the project."""
    configured = current_settings().ingest_datasets
    if configured:
        return Path(configured)
    local = Path.cwd() / DEFAULT_CATALOG
    return local if local.exists() else Path(__file__).resolve().parents[1] / DEFAULT_CATALOG


def _adapter() -> TypeAdapter:
    models = tuple(kind.config_model for kind in SOURCE_KINDS.values())
    if len(models) == 1:
        return TypeAdapter(models[0])
    union = Union[models]  # type: ignore[valid-type]  # noqa: UP007 (built from the registry at run time)
    discriminated = Annotated[union, Field(discriminator="source")]
    return TypeAdapter(cast(Any, discriminated))


def _describe(name: str, error: ErrorDetails) -> str:
    loc = [str(p) for p in error["loc"]]
    if loc and loc[0] in SOURCE_KINDS:  # drop the union tag pydantic adds
        loc = loc[1:]
    field = ".".join(loc) or "(entry)"
    message = error["msg"].removeprefix("Value error, ")
    return f"dataset {name!r}, field {field!r}: {message}"


def parse_catalog(document: Any, origin: str = "catalog") -> dict[str, DatasetConfig]:
    """Validate a parsed catalog document; every problem is reported at once."""
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), dict):
        raise CatalogError(f"{origin}: expected a mapping with a 'datasets:' mapping inside")
    adapter = _adapter()
    datasets: dict[str, DatasetConfig] = {}
    problems: list[str] = []
    tables: dict[tuple[str, str], str] = {}
    for name, entry in document["datasets"].items():
        if not isinstance(entry, dict):
            problems.append(f"dataset {name!r}: expected a mapping of fields")
            continue
        if entry.get("source") not in SOURCE_KINDS:
            problems.append(
                f"dataset {name!r}, field 'source': unknown source {entry.get('source')!r}; "
                f"expected one of {', '.join(SOURCE_KINDS)}"
            )
            continue
        try:
            config = adapter.validate_python({**entry, "name": name})
        except ValidationError as exc:
            problems += [_describe(name, e) for e in exc.errors()]
            continue
        place = (config.db_schema, config.table)
        if place in tables:
            problems.append(
                f"dataset {name!r}, field 'table': {config.db_schema}.{config.table} is "
                f"already the table of dataset {tables[place]!r}"
            )
            continue
        tables[place] = name
        datasets[name] = config
    if problems:
        # The first line stands alone (it is what a person sees first); every problem follows.
        more = f" (and {len(problems) - 1} more below)" if len(problems) > 1 else ""
        raise CatalogError(
            f"{origin}: invalid catalog: {problems[0]}{more}; fix the entry (docs/catalog.md)"
            + "".join(f"\n  {problem}" for problem in problems)
        )
    parse_budgets(document.get("budgets"), origin)  # a bad budget fails the definitions load too
    return datasets


def _read(path: Path) -> Any:
    """The parsed YAML document at ``path``; a missing file names ``INGEST_DATASETS``."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"catalog {path} not found; set INGEST_DATASETS") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog {path} is not valid YAML: {exc}") from None


def load_catalog(path: Path | None = None) -> dict[str, DatasetConfig]:
    """The catalog file (``catalog_path()`` by default), validated."""
    path = path or catalog_path()
    return parse_catalog(_read(path), str(path))


def load_budgets(path: Path | str | None = None) -> dict[str, HostBudget]:
    """The request budget of each API host: the catalog's ``budgets:`` over the defaults."""
    path = Path(path) if path else catalog_path()
    document = _read(path)
    section = document.get("budgets") if isinstance(document, dict) else None
    return parse_budgets(section, str(path))
