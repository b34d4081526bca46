"""Staging on S3: the IO managers against moto's S3 server on a real socket, then a NASS year
through ``dagster asset materialize`` with ``INGEST_STAGING=s3://…``.

The bucket has versioning on, so the tests see every object ever written and every deletion:
that is how they show that no temporary key and no copy-then-delete ever happened (object
storage has no rename), not only that none is left.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pytest

from ingest_assets.staging.frames import FrameStream, ParquetFramesIOManager
from ingest_assets.staging.pages import MANIFEST, PARTIAL, StagedPagesIOManager
from ingest_assets.staging.storage import StagingArea
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.reliability.faults import year_checksum
from ingest_assets_tests.staging.test_io_managers import (
    FRAMES_KEY,
    SCHEMA,
    YEAR,
    Fetcher,
    load,
    stage,
)
from ingest_assets_tests.support.pipeline import cli_env, nass_catalog, run_dagster
from ingest_assets_tests.support.s3 import SECRET_KEY, S3Endpoint
from ingest_assets_tests.support.secrets import blobs_text, dagster_storage_text, files_text, leaks

BUCKET = "ingest-staging"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Endpoint]:
    with S3Endpoint(BUCKET) as endpoint:
        yield endpoint


@pytest.fixture
def prefix(s3: S3Endpoint, request: pytest.FixtureRequest, monkeypatch) -> str:
    """A prefix of the bucket for one test, and the environment s3fs reads credentials from."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return request.node.name


def frames(manager: ParquetFramesIOManager, chunks: Iterator[pa.Table]) -> None:
    context = dg.build_output_context(asset_key=FRAMES_KEY, partition_key=YEAR)
    manager.handle_output(context, {YEAR: FrameStream(SCHEMA, chunks)})


def test_pages_and_frames_are_written_only_at_their_final_keys(s3: S3Endpoint, prefix: str):
    base = f"s3://{BUCKET}/{prefix}"
    pages = StagedPagesIOManager(base_path=f"{base}/pages")
    with pytest.raises(ConnectionError):  # a failed attempt first: partial manifest, 2 slices
        stage(pages, Fetcher(fail_on="state=NE"))
    retry = Fetcher()
    metadata = stage(pages, retry)
    assert retry.fetched == ["state=NE"] and metadata["slices_reused"].value == 2
    staged = load(pages)
    assert staged.staged_rows == 6 and len(list(staged.bodies())) == 6  # each page verified
    frame_manager = ParquetFramesIOManager(base_path=f"{base}/frames")
    frames(frame_manager, iter([pa.table({"state": ["IA"], "value": [1]})]))

    year = f"{prefix}/pages/demo/raw_pages/{YEAR}"
    current = set(s3.objects(prefix))
    assert f"{year}/{MANIFEST}" in current and f"{year}/{PARTIAL}" not in current
    assert f"{prefix}/frames/demo/cleaned/{YEAR}.parquet" in current
    written, deleted = s3.history(prefix)
    assert not [key for key in written if "tmp" in key], written
    # the only deletion: the partial manifest, once the full one is written
    assert deleted == [f"{year}/{PARTIAL}"]
    assert set(written) == current | {f"{year}/{PARTIAL}"}
    assert s3.open_uploads() == []


def test_a_failed_frame_write_keeps_the_previous_object_and_leaves_no_upload(
    s3: S3Endpoint, prefix: str
):
    manager = ParquetFramesIOManager(base_path=f"s3://{BUCKET}/{prefix}")
    frames(manager, iter([pa.table({"state": ["IA", "IL", "NE"], "value": [1, 2, 3]})]))
    key = f"{prefix}/demo/cleaned/{YEAR}.parquet"
    before = s3.objects(prefix)[key]

    def failing() -> Iterator[pa.Table]:
        big = pa.table({"state": ["IA"] * 400_000, "value": list(range(400_000))})
        yield big  # megabytes: a multipart upload is under way when the failure comes
        raise ValueError("year 2021, slice state=NE, column value: 'n/a' is not a number")

    with pytest.raises(ValueError, match="'n/a' is not a number"):
        frames(manager, failing())
    assert s3.objects(prefix)[key] == before
    assert s3.history(prefix)[0] == [key]  # one version: the failed write never landed
    assert s3.open_uploads() == []
    context = dg.build_input_context(asset_key=FRAMES_KEY, partition_key=YEAR)
    assert manager.load_input(context)[YEAR].num_rows == 3


def test_a_manifest_another_worker_wrote_is_seen_after_a_listing(s3: S3Endpoint, prefix: str):
    area = StagingArea(f"s3://{BUCKET}/{prefix}")
    folder = area.path("demo", "raw_pages", YEAR)
    area.write_json(f"{folder}/{PARTIAL}", {"slices": []})
    area.remove_except(folder, {PARTIAL})  # lists the folder, as a finished attempt does
    body = b'{"year": 2021}'
    s3.client().put_object(
        Bucket=BUCKET, Key=f"{prefix}/demo/raw_pages/{YEAR}/{MANIFEST}", Body=body
    )
    assert area.read_json(f"{folder}/{MANIFEST}") == {"year": 2021}


DATASET = "nass_s3"
CATALOG = nass_catalog(DATASET)


def test_a_nass_year_staged_on_s3_lands_as_with_local_staging_and_leaks_no_secret(
    s3, dagster_pg_url, pg_admin_url, tmp_path
):
    from ingest_assets_tests.conftest import create_database

    landed = {}
    outputs = []
    with NassStandIn(NassDataset(records_per_year={2019: 2_500})) as standin:
        nass = {
            "NASS_API_KEY": standin.api_key,
            "NASS_BASE_URL": standin.base_url,
            "NASS_MIN_INTERVAL_SECONDS": "0",
        }
        for where, staging in (("local", None), ("s3", f"s3://{BUCKET}/run")):
            folder = tmp_path / where
            folder.mkdir()
            warehouse = create_database(pg_admin_url, f"warehouse_{where}")
            extra = {**nass, **(s3.env() if staging else {})}
            if staging:
                extra["INGEST_STAGING"] = staging
            env = cli_env(folder, CATALOG, dagster_pg_url, warehouse, **extra)
            done = run_dagster(
                env, "asset", "materialize", "--select", f"key:{DATASET}/raw_pages+",
                "--partition", "2019",
            )  # fmt: skip
            assert done.returncode == 0, f"{where} staging:\n{done.stderr[-4000:]}"
            landed[where] = year_checksum(warehouse, "facts_data", 2019)
            outputs.append(done.stdout + done.stderr)
    assert landed["s3"] == landed["local"] and landed["s3"][0] == 2_500
    assert not (tmp_path / "s3" / "staging").exists()  # nothing staged on the local disk

    staged = s3.objects("run/")
    assert f"run/pages/{DATASET}/raw_pages/2019/{MANIFEST}" in staged
    assert f"run/frames/{DATASET}/cleaned/2019.parquet" in staged
    assert not [key for key in s3.history("run/")[0] if "tmp" in key]
    traces = {
        "dagster storage": dagster_storage_text(dagster_pg_url, DATASET),
        "compute logs and instance folder": files_text(tmp_path / "s3" / "dagster_home"),
        "staged objects": blobs_text(staged.values()),
        "process output": "\n".join(outputs),
    }
    assert "s3://ingest-staging/run" in traces["dagster storage"]  # metadata paths name S3
    assert leaks(traces, (SECRET_KEY, standin.api_key)) == set()
