"""What the Dagster UI shows about a materialization: metadata keys and types a user reads.

The UI plots numeric ``dagster/row_count`` over time, renders Markdown tables and column schemas,
and groups assets by tags and kinds; these tests pin the keys and value types it relies on.
"""

import dagster as dg
import pytest

from ingest_assets.dataset import RECONCILE_CHECK, dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.conftest import create_database

CONFIG = NassDatasetConfig(
    name="nass_ui",
    source="nass",
    table="facts_ui",
    start_year=2019,
    owners=["team:statistics"],
    query={"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"},
)
ROWS = 700


@pytest.fixture(scope="module")
def result(instance, pg_admin_url, tmp_path_factory):
    with (
        NassStandIn(NassDataset(records_per_year={2020: ROWS})) as standin,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("DATABASE_URL", create_database(pg_admin_url, "warehouse"))
        env.setenv("INGEST_STAGING", str(tmp_path_factory.mktemp("staging")))
        env.setenv("NASS_API_KEY", standin.api_key)
        env.setenv("NASS_BASE_URL", standin.base_url)
        outcome = dg.materialize(
            dataset_assets(CONFIG),
            partition_key="2020",
            resources=build_resources(),
            instance=instance,
        )
        yield outcome, standin.api_key


def metadata(result, step: str) -> dict[str, dg.MetadataValue]:
    [materialization] = result.asset_materializations_for_node(f"nass_ui__{step}")
    return materialization.metadata


def test_every_stage_reports_a_numeric_row_count_and_its_seconds(result):
    outcome, _ = result
    assert outcome.success
    for step in ("raw_pages", "cleaned", "facts"):
        values = metadata(outcome, step)
        assert isinstance(values["dagster/row_count"], dg.IntMetadataValue), step
        assert values["dagster/row_count"].value == ROWS, step
        assert isinstance(values["seconds"], dg.FloatMetadataValue), step
        assert values["seconds"].value >= 0, step


def test_raw_pages_show_the_slice_plan_bytes_and_the_redacted_query(result):
    outcome, api_key = result
    values = metadata(outcome, "raw_pages")
    assert isinstance(values["slice_plan"], dg.MarkdownMetadataValue)
    assert "| slice | filters | promised | received |" in values["slice_plan"].value
    assert f"| {ROWS:,} | {ROWS:,} |" in values["slice_plan"].value
    assert isinstance(values["bytes_staged"], dg.IntMetadataValue)
    assert values["bytes_staged"].value > 0
    assert values["source_count"].value == ROWS
    assert isinstance(values["source_query"], dg.JsonMetadataValue)
    assert values["source_query"].value["params"]["key"] == "***"
    assert api_key not in str(values)


def test_cleaned_shows_a_preview_and_its_column_schema(result):
    outcome, _ = result
    values = metadata(outcome, "cleaned")
    assert isinstance(values["preview"], dg.MarkdownMetadataValue)
    assert "state_alpha" in values["preview"].value.splitlines()[0]
    schema = values["dagster/column_schema"].value
    assert isinstance(schema, dg.TableSchema)
    assert "value" in {column.name for column in schema.columns}


def test_facts_show_table_name_schema_replaced_rows_and_check_figures(result):
    outcome, _ = result
    values = metadata(outcome, "facts")
    assert values["dagster/table_name"].value == "public.facts_ui"
    assert isinstance(values["rows_replaced"], dg.IntMetadataValue)
    assert values["rows_replaced"].value == 0  # first load of the year
    columns = {c.name: c.type for c in values["dagster/column_schema"].value.columns}
    assert columns["year"] == "integer" and columns["state_alpha"] == "text"
    [check] = [c for c in outcome.get_asset_check_evaluations() if c.check_name == RECONCILE_CHECK]
    assert check.check_name == RECONCILE_CHECK and check.passed
    assert check.metadata["loaded_rows"].value == ROWS


def test_assets_carry_group_owners_tags_and_kinds():
    specs = {spec.key.path[-1]: spec for asset in dataset_assets(CONFIG) for spec in asset.specs}
    assert {spec.group_name for spec in specs.values()} == {"nass_ui"}
    assert all(spec.owners == ["team:statistics"] for spec in specs.values())
    assert all(spec.tags.get("source") == "nass" for spec in specs.values())
    assert {"postgres", "nass"} <= set(specs["facts"].kinds)
    assert {"nass", "csv"} <= set(specs["raw_pages"].kinds)  # its response format
    assert all(spec.description for spec in specs.values())
