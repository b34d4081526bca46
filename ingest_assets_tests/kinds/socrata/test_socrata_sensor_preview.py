"""A Socrata sensor tick through ``dagster sensor preview`` when the portal dropped rowsUpdatedAt.

The tick runs in Dagster's code server (as the daemon runs it) against the stand-in, whose
``/api/views`` answer leaves ``rowsUpdatedAt`` out as data.cdc.gov has done since 2025.
"""

from __future__ import annotations

import json
import os

import pytest

from ingest_assets.standin.socrata_server import SocrataStandIn
from ingest_assets_tests.support.pipeline import run_dagster as dagster

CATALOG = """datasets:
  la_preview:
    source: socrata
    domain: data.lacity.org
    table: requests
    start_year: 2017
    end_year: 2017
    dataset_ids: {2017: la-2017}
    key: [srnumber]
    columns: {srnumber: text, updateddate: timestamp, nc: integer}
"""


@pytest.fixture
def standin():
    with SocrataStandIn() as server:
        row = {"srnumber": "1-1", "updateddate": "2017-05-01T00:00:00.000", "nc": "7"}
        columns = {"srnumber": "text", "updateddate": "calendar_date", "nc": "number"}
        server.add_dataset("la-2017", [row], columns, "srnumber")
        server.set_metadata_quirk("la-2017")
        yield server


def test_sensor_preview_without_rows_updated_at_requests_the_changed_year(
    standin, dagster_pg_url, tmp_path
):
    (tmp_path / "datasets.yaml").write_text(CATALOG)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_pg_url,
        "INGEST_DATASETS": str(tmp_path / "datasets.yaml"),
        "SOCRATA_BASE_URL": standin.base_url,
    }
    env.pop("SOCRATA_APP_TOKEN", None)
    stale = json.dumps({"fingerprints": {"2017": "viewLastModified=1"}, "next": 0})
    done = dagster(env, "sensor", "preview", "la_preview_new_data", "--cursor", stale)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    views = [r.path for r in standin.stats.requests if r.endpoint == "views"]
    assert views == ["/api/views/la-2017.json"]  # viewLastModified answered, no further fallback
    assert "la_preview 2017 changed: viewLastModified=1 -> viewLastModified=" in output, output[
        -3000:
    ]
