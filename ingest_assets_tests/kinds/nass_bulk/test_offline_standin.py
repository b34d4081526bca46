"""Offline (no NASS key, no listing chosen), a catalog with a bulk dataset gets the bulk stand-in.

``serve_offline`` is what ``ingest-assets standin``, ``demo`` and ``dev`` call; the listing it
exports must publish a crops file generated from the same records as the API stand-in.
"""

import gzip
from contextlib import ExitStack

import pytest
import requests

from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.nass_bulk.remote import current_file
from ingest_assets.settings import reset_settings
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.offline import NASS_RECORDS, serve_offline

BULK = NassBulkDatasetConfig(
    name="crops_bulk", source="nass_bulk", table="facts_bulk", file="crops", start_year=2021
)
SET_BY_SERVE = ("NASS_BASE_URL", "NASS_API_KEY", "NASS_MIN_INTERVAL_SECONDS", "NASS_BULK_URL")


@pytest.fixture
def offline(monkeypatch):
    for name in (*SET_BY_SERVE, "SOCRATA_APP_TOKEN", "SOCRATA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    reset_settings()
    yield
    reset_settings()


def test_a_bulk_dataset_is_served_its_listing_and_file(offline):
    with ExitStack() as stack, requests.Session() as session:
        environment = serve_offline(stack, {BULK.name: BULK})
        remote = current_file(session, environment["NASS_BULK_URL"], "crops", timeout=10)
        assert remote.name.startswith("qs.crops_") and remote.size > 0
        body = session.get(remote.url, timeout=10)
        assert body.status_code == 200 and len(body.content) == remote.size
    rows = gzip.decompress(body.content).count(b"\n") - 1  # the header line
    assert rows == NassDataset(records_per_year=NASS_RECORDS).count({}) > 0


def test_without_a_bulk_dataset_no_bulk_stand_in_is_started(offline):
    with ExitStack() as stack:
        assert "NASS_BULK_URL" not in serve_offline(stack, {})
