"""Materialized views listed in the catalog are refreshed after each committed load."""

import psycopg
import pytest

from ingest_assets.errors import ViewRefreshError
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets.warehouse.views import refresh_views
from ingest_assets_tests.assets.test_nass_pipeline import QUERY, materialize
from ingest_assets_tests.support.pipeline import nass_resources

CONFIG = NassDatasetConfig(
    name="nass_t",
    source="nass",
    table="facts_data",
    start_year=2018,
    query=QUERY,
    refresh_views=["facts_by_year"],
)


@pytest.fixture
def resources(warehouse_url, tmp_path, monkeypatch):
    with NassStandIn(NassDataset(records_per_year={2019: 300, 2020: 400})) as standin:
        yield nass_resources(monkeypatch, standin, warehouse_url, tmp_path / "staging")


def view_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT year, n FROM facts_by_year ORDER BY year").fetchall()


def test_a_load_refreshes_the_listed_view(instance, resources, warehouse_url):
    plain = CONFIG.model_copy(update={"refresh_views": []})
    assert materialize(instance, resources, 2019, plain).success
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "CREATE MATERIALIZED VIEW facts_by_year AS "
            "SELECT year, count(*) AS n FROM facts_data GROUP BY year"
        )
    assert materialize(instance, resources, 2020, plain).success
    assert view_rows(warehouse_url) == [(2019, 300)]  # not listed: the view is stale
    assert materialize(instance, resources, 2020, CONFIG).success
    assert view_rows(warehouse_url) == [(2019, 300), (2020, 400)]


def test_a_missing_view_is_named_in_the_error(warehouse_url):
    with psycopg.connect(warehouse_url) as conn, pytest.raises(ViewRefreshError) as caught:
        refresh_views(conn, "public", ["no_such_view"], "nass_t year 2020")
    message = str(caught.value)
    assert "public.no_such_view" in message and "nass_t year 2020" in message
