"""The stand-ins that let every shipped dataset run offline: Quick Stats and Socrata together.

``ingest-assets demo``, ``dev`` and ``standin`` serve an API from here when its credential is not
set (``NASS_API_KEY``, ``SOCRATA_APP_TOKEN``) and no base URL was chosen, and export what points
the project at them. The Quick Stats bulk files need no key: their stand-in is served, from the
API stand-in's records, when the catalog holds a ``nass_bulk`` dataset, the NASS API key is not
set (offline) and ``NASS_BULK_URL`` does not choose a listing. Quick Stats data is synthetic
(``nass_data``); Socrata datasets are served from the real recorded portal exports in
``ingest_assets_tests/fixtures/socrata``: the Seattle pet licenses snapshot as it is, and the
LA 311 2017 subset under every year's dataset id, its dates moved to that year (the portal
publishes one dataset per year with the same columns).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from ingest_assets.kinds.base import DatasetConfig
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.settings import current_settings, reset_settings
from ingest_assets.standin.nass_bulk_server import NassBulkStandIn
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets.standin.socrata_data import (
    LA311_2017_FIELDS,
    SEATTLE_PET_LICENSE_FIELDS,
    Field,
    Row,
    columns_of,
    rows_from_portal_csv,
)
from ingest_assets.standin.socrata_server import SocrataStandIn

FIXTURES = Path(__file__).resolve().parents[2] / "ingest_assets_tests" / "fixtures" / "socrata"
# Demo sizes: small years, plus one over the 50,000-record limit to show the split planner.
NASS_RECORDS = {2021: 4_000, 2022: 6_000, 2023: 60_000}
LA311_FIXTURE = ("la311/MyLA311_Service_Request_Data_2017_Subset.csv.gz", LA311_2017_FIELDS, 2017)
# Exports a dataset of one id is served from, by (portal host, dataset id).
SNAPSHOTS: dict[tuple[str, str], tuple[str, Mapping[str, Field]]] = {
    ("data.seattle.gov", "jguv-t9rb"): (
        "seattle_pet_licenses/Seattle_Pet_Licenses_20250714.csv.gz",
        SEATTLE_PET_LICENSE_FIELDS,
    ),
}
PER_YEAR_PORTALS: dict[str, tuple[str, Mapping[str, Field], int]] = {
    "data.lacity.org": LA311_FIXTURE
}
_LEADING_YEAR = re.compile(r"^(\d{4})-")


def _moved_to(rows: list[Row], years: int) -> list[Row]:
    """The rows with every ISO date's year moved by ``years``."""

    def move(value: object) -> object:
        if isinstance(value, str) and (match := _LEADING_YEAR.match(value)):
            return f"{int(match[1]) + years:04d}{value[4:]}"
        return value

    return [{name: move(value) for name, value in row.items()} for row in rows]


def load_catalog_datasets(
    standin: SocrataStandIn, catalog: Mapping[str, DatasetConfig]
) -> list[str]:
    """Serve each Socrata dataset of ``catalog`` the fixtures cover; return the names served."""
    served = []
    for name, config in catalog.items():
        if not isinstance(config, SocrataDatasetConfig):
            continue
        if config.dataset_ids and config.domain in PER_YEAR_PORTALS:
            fixture, fields, fixture_year = PER_YEAR_PORTALS[config.domain]
            rows = rows_from_portal_csv(FIXTURES / fixture, fields)
            for year, dataset_id in config.dataset_ids.items():
                moved = _moved_to(rows, year - fixture_year)
                standin.add_dataset(dataset_id, moved, columns_of(fields), None, f"{name} {year}")
            served.append(name)
        elif config.dataset_id and (config.domain, config.dataset_id) in SNAPSHOTS:
            fixture, fields = SNAPSHOTS[(config.domain, config.dataset_id)]
            rows = rows_from_portal_csv(FIXTURES / fixture, fields)
            standin.add_dataset(config.dataset_id, rows, columns_of(fields), None, name)
            served.append(name)
    return served


def serve_offline(stack: ExitStack, catalog: Mapping[str, DatasetConfig]) -> dict[str, str]:
    """Start the stand-in of each API whose credential is unset; return the environment to use.

    An API keeps its real endpoint when its key or token is set, or when its base URL is
    already chosen (``NASS_BASE_URL`` with a key, ``SOCRATA_BASE_URL``). The returned variables
    are also set in this process, so commands started from it use them.
    """
    environment: dict[str, str] = {}
    settings = current_settings()
    if not settings.nass_api_key:
        records = NassDataset(records_per_year=NASS_RECORDS)
        nass = stack.enter_context(NassStandIn(records))
        environment |= {
            "NASS_BASE_URL": nass.base_url,
            "NASS_API_KEY": nass.api_key,
            "NASS_MIN_INTERVAL_SECONDS": "0",
        }
        bulk = any(isinstance(config, NassBulkDatasetConfig) for config in catalog.values())
        if bulk and not settings.nass_bulk_url:
            environment["NASS_BULK_URL"] = stack.enter_context(NassBulkStandIn(records)).listing_url
    if not settings.socrata_app_token and not settings.socrata_base_url:
        socrata = stack.enter_context(SocrataStandIn())
        load_catalog_datasets(socrata, catalog)
        environment["SOCRATA_BASE_URL"] = socrata.base_url
    os.environ.update(environment)
    reset_settings()  # this process reads the stand-ins' URLs from now on
    return environment
