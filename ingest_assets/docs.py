"""Generated documentation: the catalog's field tables and the environment tables, from code.

The tables in ``docs/catalog.md``, ``docs/operations.md`` and the README sit between
``<!-- BEGIN <section> -->`` and ``<!-- END -->`` markers and are rewritten from the pydantic
models and ``Settings`` here, so a field added in code cannot be missing from the docs:
``python -m ingest_assets.docs`` rewrites them, ``--check`` fails when a file differs (as the
docs test does).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ingest_assets.kinds.base import DatasetConfig
from ingest_assets.kinds.files.config import FilesDatasetConfig
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.kinds.typed import TypedDatasetConfig
from ingest_assets.settings import Settings, env_name

PROJECT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "docs/catalog.md", "docs/operations.md")
_SECTION = re.compile(r"(<!-- BEGIN (?P<name>[\w:]+) -->\n)(?P<body>.*?)(<!-- END -->)", re.S)

CATALOG_MODELS: dict[str, type[BaseModel]] = {
    "common": DatasetConfig,
    "typed": TypedDatasetConfig,
    "nass": NassDatasetConfig,
    "socrata": SocrataDatasetConfig,
    "files": FilesDatasetConfig,
    "nass_bulk": NassBulkDatasetConfig,
}
"""Each table's model; a kind's table lists the fields it adds to its parent."""


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "—"
    else:
        value = info.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value != [] else "`[]`"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def own_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields a model declares itself (a kind's ``source`` is listed with the common ones)."""
    parent = model.__mro__[1]
    inherited = getattr(parent, "model_fields", {})
    return {name: info for name, info in model.model_fields.items() if name not in inherited}


def fields_table(model: type[BaseModel]) -> str:
    """A Markdown table of a catalog model's own fields: name, required, default, meaning."""
    lines = ["| field | required | default | meaning |", "|---|---|---|---|"]
    for name, info in own_fields(model).items():
        required = "yes" if info.is_required() else "no"
        meaning = _cell(info.description)
        lines.append(f"| `{info.alias or name}` | {required} | {_default(info)} | {meaning} |")
    return "\n".join(lines) + "\n"


def settings_table() -> str:
    """A Markdown table of every environment variable ``Settings`` reads."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        lines.append(f"| `{env_name(name)}` | {_default(info)} | {_cell(info.description)} |")
    return "\n".join(lines) + "\n"


def _generator(section: str) -> Callable[[], str]:
    if section == "settings":
        return settings_table
    kind, _, model = section.partition(":")
    if kind != "fields" or model not in CATALOG_MODELS:
        raise KeyError(f"unknown generated section {section!r}")
    return lambda: fields_table(CATALOG_MODELS[model])


def render(text: str) -> str:
    """``text`` with every marked section regenerated."""
    return _SECTION.sub(lambda m: m.group(1) + _generator(m["name"])() + m.group(4), text)


def stale_documents(root: Path = PROJECT) -> list[str]:
    """The documents whose generated sections differ from the code."""
    return [
        doc for doc in DOCUMENTS if render((root / doc).read_text()) != (root / doc).read_text()
    ]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated sections, or with ``--check`` report the stale ones."""
    parser = argparse.ArgumentParser(prog="python -m ingest_assets.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a document is stale")
    args = parser.parse_args(argv)
    stale = stale_documents()
    if args.check:
        for doc in stale:
            print(f"{doc} is stale: run python -m ingest_assets.docs", file=sys.stderr)
        return 1 if stale else 0
    for doc in stale:
        path = PROJECT / doc
        path.write_text(render(path.read_text()))
        print(f"rewrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
