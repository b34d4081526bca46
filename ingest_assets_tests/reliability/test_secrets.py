"""Secrets and privileges: a full run as a least-privilege role leaves no key or password behind.

The run uses a distinctive Quick Stats key and a database URL with a password (the embedded
server trusts local connections, so the password is only a string that must not leak), then
every trace the run left is searched: Dagster's PostgreSQL storage (event log, runs, ...), the
instance's folder (compute logs), the staging folder and the process's own output.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from ingest_assets.dataset import dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.reliability.faults import year_checksum
from ingest_assets_tests.support.secrets import dagster_storage_text, files_text, leaks

pytestmark = pytest.mark.reliability

KEY = "NASSKEY-7f3c9e2a-reliability-b41d"
PASSWORD = "pw-51d0b8-RELIABILITY-e9a2"
ROLE = "rel_loader"
SCHEMA = "rel_facts"
QUERY = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"}
CONFIG = NassDatasetConfig(
    name="nass_sec", source="nass", table="facts_data", schema=SCHEMA, start_year=2018, query=QUERY
)
# What a loader role needs (docs/reliability.md, "Least privilege"): its facts schema and
# ingest_meta, both owned by it; CONNECT on the database; nothing else.
GRANTS = """
CREATE SCHEMA {schema} AUTHORIZATION {role};
CREATE SCHEMA ingest_meta AUTHORIZATION {role};
REVOKE ALL ON DATABASE {database} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role};
"""


def least_privilege_url(admin_url: str) -> str:
    """Create the loader role (if needed) and its schemas; return its URL, password inside."""
    database = urlsplit(admin_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE"
                ).format(sql.Identifier(ROLE), sql.Literal(PASSWORD))
            )
        names = {"schema": SCHEMA, "role": ROLE, "database": database}
        conn.execute(sql.SQL(GRANTS).format(**{k: sql.Identifier(v) for k, v in names.items()}))
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{ROLE}:{PASSWORD}@{host}").geturl()


def test_a_run_as_a_least_privilege_role_leaves_no_secret_anywhere(
    instance, dagster_pg_url, warehouse_url, tmp_path, monkeypatch, capfd, tally
):
    loader_url = least_privilege_url(warehouse_url)
    staging = tmp_path / "staging"
    monkeypatch.setenv("DATABASE_URL", loader_url)
    monkeypatch.setenv("INGEST_STAGING", str(staging))
    monkeypatch.setenv("NASS_API_KEY", KEY)
    with NassStandIn(NassDataset(records_per_year={2019: 800}), api_key=KEY) as standin:
        monkeypatch.setenv("NASS_BASE_URL", standin.base_url)
        standin.inject("reset", times=1, endpoint="api_GET")  # errors on the way are searched too
        resources = build_resources()
        assert isinstance(resources["nass_api"], NassApi)
        result = dg.materialize(
            dataset_assets(CONFIG),
            partition_key="2019",
            resources=resources,
            instance=instance,
        )
        tally.add("faults_injected", sum(standin.stats.faults_served.values()))
    assert result.success
    assert year_checksum(warehouse_url, "facts_data", 2019, SCHEMA)[0] == 800

    output = capfd.readouterr()
    traces = {
        "dagster storage": dagster_storage_text(dagster_pg_url, "nass_sec"),
        "instance folder": files_text(Path(instance.root_directory)),
        "staging folder": files_text(staging),
        "process output": output.out + output.err,
    }
    found = leaks(traces, (KEY, PASSWORD))
    tally.add("secrets_found", len(found))
    assert found == set()

    with psycopg.connect(loader_url) as conn:  # the role really is least-privileged
        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.intruder (x int)")
