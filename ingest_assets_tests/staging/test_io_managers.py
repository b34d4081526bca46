"""The two IO managers on a temporary folder: what they write, what they read back, what they
refuse. No PostgreSQL and no network: pages come from a fetch function that counts its calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from ingest_assets.errors import StagingError
from ingest_assets.kinds.base import Page, Plan, Slice
from ingest_assets.staging.frames import FrameStream, ParquetFramesIOManager
from ingest_assets.staging.pages import MANIFEST, PARTIAL, PageStream, StagedPagesIOManager

KEY = dg.AssetKey(["demo", "raw_pages"])
YEAR = "2021"
SLICES = tuple(
    Slice(key=f"state={state}", params={"state": (state,)}, expected_rows=2)
    for state in ("IA", "IL", "NE")
)


class Fetcher:
    """Two pages of one record each per slice; optionally fails on one slice."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fetched: list[str] = []
        self.fail_on = fail_on

    def __call__(self, part: Slice) -> Iterator[Page]:
        if part.key == self.fail_on:
            raise ConnectionError(f"lost the connection fetching {part.key}")
        self.fetched.append(part.key)
        for index in range(2):
            yield Page(part, index, f'{{"slice": "{part.key}", "page": {index}}}'.encode(), 1)


def stream(fetch: Fetcher) -> PageStream:
    plan = Plan(year=int(YEAR), slices=SLICES, source_count=6)
    return PageStream("demo", plan, fetch, ".json", {"year": YEAR})


def stage(manager: StagedPagesIOManager, fetch: Fetcher) -> dict:
    context = dg.build_output_context(asset_key=KEY, partition_key=YEAR)
    manager.handle_output(context, {YEAR: stream(fetch)})
    return context.get_logged_metadata()


def load(manager: StagedPagesIOManager):
    return manager.load_input(dg.build_input_context(asset_key=KEY, partition_key=YEAR))[YEAR]


def year_folder(tmp_path: Path) -> Path:
    return tmp_path / "demo" / "raw_pages" / YEAR


def test_pages_round_trip_with_a_manifest(tmp_path: Path) -> None:
    manager = StagedPagesIOManager(base_path=str(tmp_path))
    metadata = stage(manager, Fetcher())
    staged = load(manager)
    assert (staged.year, staged.source_count, staged.staged_rows) == (2021, 6, 6)
    bodies = [body for _, body in staged.bodies()]
    assert bodies[0] == b'{"slice": "state=IA", "page": 0}' and len(bodies) == 6
    assert [entry["key"] for entry in staged.manifest["slices"]] == [s.key for s in SLICES]
    assert staged.manifest["reused_slices"] == 0 and staged.manifest["fetched_slices"] == 3
    assert metadata["dagster/row_count"].value == 6 and metadata["slices"].value == 3
    files = {p.name for p in year_folder(tmp_path).iterdir()}
    assert MANIFEST in files and PARTIAL not in files and len(files) == 7  # manifest + 6 pages


def test_a_failed_attempt_keeps_a_partial_manifest_that_the_next_reuses(tmp_path: Path) -> None:
    manager = StagedPagesIOManager(base_path=str(tmp_path))
    with pytest.raises(ConnectionError):
        stage(manager, Fetcher(fail_on="state=NE"))
    assert (year_folder(tmp_path) / PARTIAL).exists()
    assert not (year_folder(tmp_path) / MANIFEST).exists()
    retry = Fetcher()
    metadata = stage(manager, retry)
    assert retry.fetched == ["state=NE"]  # the two intact slices were not fetched again
    assert metadata["slices_reused"].value == 2
    assert load(manager).staged_rows == 6


def test_a_corrupted_partial_page_is_fetched_again(tmp_path: Path) -> None:
    manager = StagedPagesIOManager(base_path=str(tmp_path))
    with pytest.raises(ConnectionError):
        stage(manager, Fetcher(fail_on="state=NE"))
    first_page = sorted(year_folder(tmp_path).glob("*.zst"))[0]
    first_page.write_bytes(b"not what was staged")
    retry = Fetcher()
    stage(manager, retry)
    assert len(retry.fetched) == 2 and "state=NE" in retry.fetched


def test_a_page_corrupted_after_staging_is_refused_when_read(tmp_path: Path) -> None:
    manager = StagedPagesIOManager(base_path=str(tmp_path))
    stage(manager, Fetcher())
    victim = sorted(year_folder(tmp_path).glob("*.zst"))[-1]
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(StagingError, match=f"{victim.name} does not match its manifest checksum"):
        list(load(manager).bodies())


def test_reading_an_unstaged_year_names_the_asset_and_year(tmp_path: Path) -> None:
    with pytest.raises(StagingError, match="no staged pages for demo/raw_pages year 2021"):
        load(StagedPagesIOManager(base_path=str(tmp_path)))


FRAMES_KEY = dg.AssetKey(["demo", "cleaned"])
SCHEMA = pa.schema([("state", pa.string()), ("value", pa.int64())])


def test_frames_round_trip_chunk_by_chunk_skipping_empty_chunks(tmp_path: Path) -> None:
    manager = ParquetFramesIOManager(base_path=str(tmp_path))
    chunks = [
        pa.table({"state": ["IA", "IL"], "value": [1, 2]}),
        pa.table({"state": pa.array([], pa.string()), "value": pa.array([], pa.int64())}),
        pa.table({"state": ["NE"], "value": pa.array([3], pa.int32())}),  # cast to the schema
    ]
    context = dg.build_output_context(asset_key=FRAMES_KEY, partition_key=YEAR)
    manager.handle_output(context, {YEAR: FrameStream(SCHEMA, iter(chunks))})
    path = tmp_path / "demo" / "cleaned" / f"{YEAR}.parquet"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left beside it
    assert context.get_logged_metadata()["dagster/row_count"].value == 3
    context = dg.build_input_context(asset_key=FRAMES_KEY, partition_key=YEAR)
    frames = manager.load_input(context)[YEAR]
    assert frames.num_rows == 3
    table = pa.Table.from_batches(list(frames.batches(batch_size=2)))
    assert table.schema == SCHEMA
    assert table.to_pydict() == {"state": ["IA", "IL", "NE"], "value": [1, 2, 3]}


def test_reading_an_uncleaned_year_names_the_asset_and_year(tmp_path: Path) -> None:
    manager = ParquetFramesIOManager(base_path=str(tmp_path))
    with pytest.raises(StagingError, match="no cleaned frame for demo/cleaned year 2021"):
        manager.load_input(dg.build_input_context(asset_key=FRAMES_KEY, partition_key=YEAR))


def test_a_run_of_several_years_reads_each_year_and_must_return_every_year(
    tmp_path: Path,
) -> None:
    manager = ParquetFramesIOManager(base_path=str(tmp_path))
    for year, states in (("2020", ["IA"]), ("2021", ["IL", "NE"])):
        context = dg.build_output_context(asset_key=FRAMES_KEY, partition_key=year)
        table = pa.table({"state": states, "value": list(range(len(states)))})
        manager.handle_output(context, {year: FrameStream(SCHEMA, iter([table]))})
    years = dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 1 1 *", fmt="%Y", start="2019", end="2023"
    )
    span = dg.PartitionKeyRange("2020", "2021")
    context = dg.build_input_context(
        asset_key=FRAMES_KEY, asset_partition_key_range=span, asset_partitions_def=years
    )
    frames = manager.load_input(context)
    assert {year: handle.num_rows for year, handle in frames.items()} == {"2020": 1, "2021": 2}
    wrong = dg.build_output_context(asset_key=FRAMES_KEY, partition_key="2022")
    with pytest.raises(StagingError, match=r"returned years \['2021'\], but the run .*'2022'"):
        manager.handle_output(wrong, {"2021": FrameStream(SCHEMA, iter([]))})
