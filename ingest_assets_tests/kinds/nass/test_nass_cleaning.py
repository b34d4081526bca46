"""The Quick Stats cleaner against real recorded responses."""

import json
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from ingest_assets.errors import CleaningError
from ingest_assets.kinds.nass.cleaner import COLUMNS, NassCleaner, _read_page, clean_records
from ingest_assets.kinds.nass.config import NassDatasetConfig

FIXTURES = Path(__file__).parents[2] / "fixtures" / "nass"
CONFIG = NassDatasetConfig(
    name="t", source="nass", table="t", start_year=2000, query={"source_desc": "SURVEY"}
)


def _records(name: str) -> list[dict]:
    return NassCleaner(CONFIG).parse_page((FIXTURES / name).read_bytes())


def test_string_year_and_int_year_recordings_clean_identically():
    old = clean_records(_records("rnassqs_api_GET_corn_yield_VA_2012.json"), 2012, "t")
    new = clean_records(_records("rnassqs_api_GET_corn_yield_VA_2012_2019-08.json"), 2012, "t")
    assert old.num_rows == new.num_rows == 12
    assert old.column("year").to_pylist() == [2012] * 12
    assert old.equals(new)


def test_values_cv_and_load_time_are_typed():
    table = clean_records(_records("rnassqs_api_GET_corn_yield_VA_2012.json"), 2012, "t")
    rows = table.to_pylist()
    assert [c.name for c in COLUMNS] == table.column_names
    assert rows[0]["value"] == 161.2 and rows[0]["cv_pct"] == 0.6
    assert rows[6]["cv_pct"] is None and rows[6]["cv_code"] is None
    assert str(rows[6]["load_time"]) == "2015-06-03 15:08:31"
    assert rows[0]["state_ansi"] == "51"


def test_current_backend_sample_thousands_separators_codes_and_millis():
    records = _records("usda-nass_api_GET_rice_production_state_1990-2024_2026-01_first8.json")
    by_year = {}
    for record in records:
        by_year.setdefault(record["year"], []).append(record)
    table = clean_records(by_year[2017], 2017, "t")
    rows = {r["state_alpha"]: r for r in table.to_pylist()}
    assert rows["AR"]["value"] == 44_064_806.0
    assert rows["CA"]["value"] == 12_228_339.0
    assert rows["CA"]["cv_pct"] is None and rows["CA"]["cv_code"] == "(H)"
    assert rows["AR"]["cv_pct"] == 9.4 and rows["AR"]["cv_code"] is None
    assert str(rows["AR"]["load_time"]) == "2018-02-01 00:00:00"


def test_key_order_does_not_matter():
    # These two recordings hold one bare record each (the README they came from cut the body).
    june = [
        json.loads((FIXTURES / "jl_api_GET_oranges_CA_2019_first_record_2020-06.json").read_text())
    ]
    december = [
        json.loads((FIXTURES / "jl_api_GET_oranges_CA_2019_first_record_2020-12.json").read_text())
    ]
    assert list(june[0]) != list(december[0])
    assert clean_records(june, 2019, "t").equals(clean_records(december, 2019, "t"))


def test_suppression_codes_are_kept_not_zeroed():
    record = _records("rnassqs_api_GET_corn_yield_VA_2012_2019-08.json")[0]
    records = [
        {**record, "Value": value, "CV (%)": cv}
        for value, cv in [("(D)", "(L)"), ("                 (Z)", ""), ("1,234", "(H)")]
    ]
    rows = clean_records(records, 2012, "t").to_pylist()
    assert [(r["value"], r["value_code"]) for r in rows] == [
        (None, "(D)"),
        (None, "(Z)"),
        (1234.0, None),
    ]
    assert [r["cv_code"] for r in rows] == ["(L)", None, "(H)"]


def test_a_value_that_is_not_a_number_names_column_and_value():
    record = _records("rnassqs_api_GET_corn_yield_VA_2012_2019-08.json")[0]
    with pytest.raises(CleaningError, match=r"column 'value'.*'12x'") as error:
        clean_records([{**record, "Value": "12x"}], 2012, "dataset d, year 2012, slice s")
    assert "dataset d, year 2012, slice s" in str(error.value)


def test_schema_drift_names_missing_and_new_fields():
    record = dict(_records("rnassqs_api_GET_corn_yield_VA_2012_2019-08.json")[0])
    record.pop("county_code")
    record["new_field"] = "x"
    with pytest.raises(CleaningError, match=r"missing field.*county_code.*new field.*new_field"):
        clean_records([record], 2012, "t")


def test_a_record_from_another_year_is_refused():
    records = _records("rnassqs_api_GET_corn_yield_VA_2012_2019-08.json")
    with pytest.raises(CleaningError, match="year 2012 arrived in partition 2013"):
        clean_records(records, 2013, "t")


def test_error_bodies_are_not_records():
    body = (FIXTURES / "rnassqs_api_GET_400_no_data_year2102.body.json").read_bytes()
    assert json.loads(body) == {"error": ["bad request - invalid query"]}
    with pytest.raises(Exception, match="expected a JSON object with a 'data' list"):
        NassCleaner(CONFIG).parse_page(body)


# -- the page path (pyarrow's JSON reader, no Python records) must agree with the record path ---
def _page(records: list[dict]) -> bytes:
    return json.dumps({"data": records}, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("name", "year"),
    [
        ("rnassqs_api_GET_corn_yield_VA_2012_2019-08.json", 2012),  # int year: the Arrow path
        ("rnassqs_api_GET_corn_yield_VA_2012.json", 2012),  # text year: falls back to records
    ],
)
def test_page_path_equals_record_path(name: str, year: int):
    cleaner = NassCleaner(CONFIG)
    body = (FIXTURES / name).read_bytes()
    by_records = clean_records(cleaner.parse_page(body), year, "t")
    assert cleaner.clean_page(body, year, "t").equals(by_records)
    compact = _page(cleaner.parse_page(body))
    assert cleaner.clean_page(compact, year, "t").equals(by_records)
    assert (_read_page(compact) is None) == isinstance(cleaner.parse_page(body)[0]["year"], str)


def test_page_path_on_a_standin_page_with_shuffled_key_order():
    from ingest_assets.standin.nass_data import NassDataset
    from ingest_assets.standin.nass_server import NassStandIn

    with NassStandIn(NassDataset({2020: 3_000})) as standin:
        url = f"{standin.base_url}/api_GET/?key={standin.api_key}&year=2020"
        with urllib.request.urlopen(url) as response:
            body = response.read()
    cleaner = NassCleaner(CONFIG)
    assert _read_page(body) is not None
    table = cleaner.clean_page(body, 2020, "t")
    assert table.num_rows == 3_000
    assert table.equals(clean_records(cleaner.parse_page(body), 2020, "t"))


def test_page_path_reports_drift_and_wrong_year_like_the_record_path():
    cleaner = NassCleaner(CONFIG)
    records = _records("rnassqs_api_GET_corn_yield_VA_2012_2019-08.json")
    extra = [{**records[0], "new_field": "x"}, *records[1:]]
    with pytest.raises(CleaningError, match="new field"):
        cleaner.clean_page(_page(extra), 2012, "t")
    missing = [{k: v for k, v in records[0].items() if k != "unit_desc"}, *records[1:]]
    with pytest.raises(CleaningError, match=r"missing field.*unit_desc"):
        cleaner.clean_page(_page(missing), 2012, "t")
    with pytest.raises(CleaningError, match="year 2012 arrived in partition 2013"):
        cleaner.clean_page(_page(records), 2013, "t")


# -- CSV pages (the default response format) -------------------------------------------------
CSV_SAMPLE = "rnassqs_api_GET_corn_yield_VA_2012.csv"


def test_csv_recording_cleans_like_the_json_recording_of_the_same_query():
    cleaner = NassCleaner(CONFIG)
    from_csv = cleaner.clean_page((FIXTURES / CSV_SAMPLE).read_bytes(), 2012, "t")
    from_json = clean_records(_records("rnassqs_api_GET_corn_yield_VA_2012.json"), 2012, "t")
    assert from_csv.num_rows == 12
    assert from_csv.equals(from_json)
    assert cleaner.parse_page((FIXTURES / CSV_SAMPLE).read_bytes())[0]["state_alpha"] == "VA"


def _csv_with(replace: tuple[bytes, bytes]) -> bytes:
    return (FIXTURES / CSV_SAMPLE).read_bytes().replace(*replace)


def test_csv_header_drift_names_missing_and_new_fields():
    body = _csv_with((b'"county_code"', b'"county_fips"'))
    with pytest.raises(
        CleaningError, match=r"slice s: .*missing field.*county_code.*new field.*county_fips"
    ):
        NassCleaner(CONFIG).clean_page(body, 2012, "dataset d, year 2012, slice s")


def test_a_csv_page_cut_inside_a_row_is_named_not_loaded():
    body = (FIXTURES / CSV_SAMPLE).read_bytes()
    with pytest.raises(CleaningError, match=r"slice s: staged CSV page does not parse.*columns"):
        NassCleaner(CONFIG).clean_page(body[: len(body) // 2], 2012, "year 2012, slice s")


def test_csv_values_are_typed_and_checked_like_json_values():
    cleaner = NassCleaner(CONFIG)
    with pytest.raises(CleaningError, match="year 2012 arrived in partition 2013"):
        cleaner.clean_page((FIXTURES / CSV_SAMPLE).read_bytes(), 2013, "t")
    with pytest.raises(CleaningError, match=r"column 'value'.*'12x'"):
        cleaner.clean_page(_csv_with((b'"161.2"', b'"12x"')), 2012, "t")
    rows = cleaner.clean_page(_csv_with((b'"161.2"', b'"               (D)"')), 2012, "t")
    assert (rows.column("value")[0].as_py(), rows.column("value_code")[0].as_py()) == (None, "(D)")


def test_a_big_csv_page_is_cleaned_in_bounded_chunks_equal_to_the_json_page():
    from ingest_assets.standin.nass_data import NassDataset
    from ingest_assets.standin.nass_server import NassStandIn

    bodies = {}
    with NassStandIn(NassDataset({2020: 30_000})) as standin:
        for fmt in ("CSV", "JSON"):
            url = f"{standin.base_url}/api_GET/?key={standin.api_key}&year=2020&format={fmt}"
            with urllib.request.urlopen(url) as response:
                bodies[fmt] = response.read()
    cleaner = NassCleaner(CONFIG)
    chunks = list(cleaner.clean_chunks(bodies["CSV"], 2020, "t"))
    assert len(chunks) > 1 and max(c.num_rows for c in chunks) < 15_000
    assert sum(c.num_rows for c in chunks) == 30_000
    from_csv = pa.concat_tables(chunks)
    assert from_csv.equals(cleaner.clean_page(bodies["JSON"], 2020, "t"))
    assert from_csv.equals(cleaner.clean_page(bodies["CSV"], 2020, "t"))


# -- Arrow pages (a split bulk file's) ---------------------------------------------------------
def _arrow_page(csv_body: bytes, rename: tuple[str, str] | None = None, copies: int = 1) -> bytes:
    """The CSV page's fields as an Arrow IPC page of text columns, as ``raw_pages`` stages a
    bulk year (``copies`` repeats its rows; ``rename`` renames a field)."""
    import pyarrow.csv as pacsv

    text = dict.fromkeys(NassCleaner(CONFIG).expected_fields(), pa.string())
    options = pacsv.ConvertOptions(column_types=text, strings_can_be_null=False)
    table = pa.concat_tables(
        [pacsv.read_csv(pa.py_buffer(csv_body), convert_options=options)] * copies
    )
    if rename:
        table = table.rename_columns(
            [rename[1] if n == rename[0] else n for n in table.column_names]
        )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return sink.getvalue().to_pybytes()


def test_an_arrow_page_cleans_like_the_csv_page_of_the_same_rows_in_bounded_chunks():
    csv_body = (FIXTURES / CSV_SAMPLE).read_bytes()
    cleaner = NassCleaner(CONFIG)
    assert cleaner.clean_page(_arrow_page(csv_body), 2012, "t").equals(
        cleaner.clean_page(csv_body, 2012, "t")
    )
    chunks = list(cleaner.clean_chunks(_arrow_page(csv_body, copies=2_000), 2012, "t"))
    assert [c.num_rows for c in chunks] == [10_000, 10_000, 4_000]  # 24,000 rows, sliced
    assert cleaner.page_fields(_arrow_page(csv_body)) == set(cleaner.expected_fields())


def test_arrow_page_drift_and_damage_are_named_not_loaded():
    csv_body = (FIXTURES / CSV_SAMPLE).read_bytes()
    drifted = _arrow_page(csv_body, rename=("county_code", "county_fips"))
    with pytest.raises(
        CleaningError, match=r"slice s: .*missing field.*county_code.*new field.*county_fips"
    ):
        NassCleaner(CONFIG).clean_page(drifted, 2012, "dataset d, year 2012, slice s")
    whole = _arrow_page(csv_body)
    with pytest.raises(CleaningError, match=r"slice s: staged Arrow page does not read"):
        NassCleaner(CONFIG).clean_page(whole[: len(whole) // 2], 2012, "year 2012, slice s")
