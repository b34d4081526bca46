"""The Socrata stand-in answers like SODA 2.1, quirks included, over real HTTP.

Data comes from the recorded fixtures (LA 311 2017 and two Seattle Pet Licenses exports, see
``fixtures/socrata/README.md``); expected answers are computed from the same rows in Python.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from ingest_assets.standin.socrata_data import (
    LA311_2017_FIELDS,
    SEATTLE_PET_LICENSE_FIELDS,
    Row,
    columns_of,
    rows_from_portal_csv,
)
from ingest_assets.standin.socrata_server import DEMO_DATASETS, SocrataStandIn

FIXTURES = Path(__file__).parent.parent / "fixtures" / "socrata"
LA311_CSV = FIXTURES / "la311" / "MyLA311_Service_Request_Data_2017_Subset.csv.gz"
PETS_2023_CSV = FIXTURES / "seattle_pet_licenses" / "Seattle_Pet_Licenses_snapshot_2023-04.csv.gz"
PETS_2025_CSV = FIXTURES / "seattle_pet_licenses" / "Seattle_Pet_Licenses_20250714.csv.gz"
RECORDED = FIXTURES / "socratadata_recorded"
TOKEN = "test-app-token"
LA = "la311-2017"
PETS = "pets-2023"


@pytest.fixture(scope="module")
def la311_rows() -> list[Row]:
    return rows_from_portal_csv(LA311_CSV, LA311_2017_FIELDS)


@pytest.fixture(scope="module")
def pets_rows() -> list[Row]:
    return rows_from_portal_csv(PETS_2023_CSV, SEATTLE_PET_LICENSE_FIELDS)


@pytest.fixture(scope="module")
def server(la311_rows: list[Row], pets_rows: list[Row]) -> Iterator[SocrataStandIn]:
    """One server for the read-only tests; tests that change data add datasets of their own."""
    standin = SocrataStandIn(app_token=TOKEN)
    standin.add_dataset(LA, la311_rows, columns_of(LA311_2017_FIELDS), "srnumber")
    standin.add_dataset(PETS, pets_rows, columns_of(SEATTLE_PET_LICENSE_FIELDS))
    with standin:
        yield standin


@pytest.fixture
def standin(server: SocrataStandIn) -> SocrataStandIn:
    server.clear_faults()
    server.reset_stats()
    return server


def get(standin: SocrataStandIn, dataset: str, **params: object) -> requests.Response:
    return requests.get(f"{standin.base_url}/resource/{dataset}.json", params=params, timeout=10)


def metadata(standin: SocrataStandIn, dataset: str) -> dict[str, object]:
    response = requests.get(f"{standin.base_url}/api/views/{dataset}.json", timeout=10)
    response.raise_for_status()
    return response.json()


def count(standin: SocrataStandIn, dataset: str, **params: object) -> int:
    response = get(standin, dataset, **{"$select": "count(*)", **params})
    assert response.status_code == 200, response.text
    return int(response.json()[0]["count"])


def page_through(standin: SocrataStandIn, dataset: str, **params: object) -> list[Row]:
    """Offset paging as sodapy's get_all does it: stop at the first short page."""
    rows: list[Row] = []
    while True:
        page = get(standin, dataset, **params, **{"$limit": 1000, "$offset": len(rows)}).json()
        rows.extend(page)
        if len(page) < 1000:
            return rows


# --- the fixtures, as API rows -----------------------------------------------------------------


def test_la311_portal_export_becomes_api_rows(la311_rows: list[Row]) -> None:
    assert len(la311_rows) == 9_999
    assert len({row["srnumber"] for row in la311_rows}) == 9_999
    first = la311_rows[0]
    assert first["srnumber"] == "1-870704831"
    assert first["createddate"] == "2017-12-31T23:59:58.000"  # 12/31/2017 11:59:58 PM
    assert first["servicedate"] == "2018-01-05T00:00:00.000"  # 01/05/2018 12:00:00 AM
    assert first["location"] == {"latitude": "34.073216645", "longitude": "-118.266861909"}
    assert all(isinstance(value, str) for key, value in first.items() if key != "location")
    assert sum("latitude" not in row for row in la311_rows) == 1_753  # empty -> key absent
    assert max(row["updateddate"] for row in la311_rows) == "2019-03-12T17:15:04.000"


def test_pet_exports_become_api_rows(pets_rows: list[Row]) -> None:
    newer = rows_from_portal_csv(PETS_2025_CSV, SEATTLE_PET_LICENSE_FIELDS)
    assert (len(pets_rows), len(newer)) == (43_086, 42_659)
    # The 2023 export starts with a BOM; its first header must still be recognised.
    assert all("license_issue_date" in row for row in pets_rows)
    assert pets_rows[0] == {
        "license_issue_date": "2015-12-18T00:00:00.000",  # December 18 2015
        "license_number": "S107948",
        "animal_s_name": "Zen",
        "species": "Cat",
        "primary_breed": "Domestic Longhair",
        "secondary_breed": "Mix",
        "zip_code": "98117",
    }
    assert "secondary_breed" not in pets_rows[1]  # Misty,Cat,Siberian,,98117
    assert max(row["license_issue_date"] for row in newer) == "2025-07-09T00:00:00.000"


def test_portal_loader_names_missing_headers(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("License Number\nS1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Species"):
        rows_from_portal_csv(export, SEATTLE_PET_LICENSE_FIELDS)


# --- paging ------------------------------------------------------------------------------------


def test_default_limit_is_1000(standin: SocrataStandIn) -> None:
    response = get(standin, LA)
    assert response.status_code == 200
    assert len(response.json()) == 1_000
    assert standin.stats.max_rows_served == 1_000


def test_paging_ordered_by_id_returns_every_row_once(
    standin: SocrataStandIn, la311_rows: list[Row]
) -> None:
    rows = page_through(standin, LA, **{"$order": ":id"})
    assert len(rows) == 9_999
    assert [row["srnumber"] for row in rows] == [row["srnumber"] for row in la311_rows]


def test_paging_without_order_duplicates_and_skips_rows(
    standin: SocrataStandIn, la311_rows: list[Row]
) -> None:
    rows = page_through(standin, LA)
    keys = [row["srnumber"] for row in rows]
    assert len(keys) == 9_999
    assert len(set(keys)) < 9_999  # duplicates, hence gaps: the sodapy#85 symptom
    first, second = (get(standin, LA, **{"$select": "srnumber"}).json() for _ in range(2))
    assert first != second


def test_ties_in_a_non_unique_order_come_back_in_any_order(standin: SocrataStandIn) -> None:
    params = {"$select": "srnumber,status", "$order": "status", "$limit": 50}
    first, second = (get(standin, LA, **params).json() for _ in range(2))
    assert [row["status"] for row in first] == ["Cancelled"] * 50 == [r["status"] for r in second]
    assert first != second


def test_keyset_window_paging_returns_every_row_once(standin: SocrataStandIn) -> None:
    seen: list[str] = []
    cursor: Row | None = None
    while True:
        params: dict[str, object] = {"$order": "updateddate, srnumber", "$limit": 2_500}
        if cursor is not None:
            stamp, key = cursor["updateddate"], cursor["srnumber"]
            params["$where"] = (
                f"updateddate > '{stamp}' OR (updateddate = '{stamp}' AND srnumber > '{key}')"
            )
        page = get(standin, LA, **params).json()
        seen.extend(row["srnumber"] for row in page)
        if len(page) < 2_500:
            break
        cursor = page[-1]
    assert len(seen) == len(set(seen)) == 9_999


def test_offset_past_the_end_is_an_empty_array(standin: SocrataStandIn) -> None:
    response = get(standin, LA, **{"$offset": 10_000, "$order": ":id"})
    assert response.content == b"[]\n"


# --- SoQL --------------------------------------------------------------------------------------


def test_count_is_a_string(standin: SocrataStandIn) -> None:
    response = get(standin, LA, **{"$select": "count(*)"})
    assert response.json() == [{"count": "9999"}]
    assert json.loads(response.headers["X-SODA2-Types"]) == ["number"]
    aliased = get(standin, LA, **{"$select": "count(*) AS n", "$where": "status = 'Open'"})
    assert aliased.json() == [{"n": "5"}]
    # Same shape as the recorded demo answer: counts are strings typed "number".
    recorded = json.loads((RECORDED / "soda.demo.socrata.com_resource_4tka-6guv.json-668050.json")
                          .read_text())["response"]  # fmt: skip
    assert all(isinstance(row["count"], str) for row in recorded["body_json"])
    assert json.loads(recorded["headers"]["X-SODA2-Types"])[-1] == "number"


WHERE_CASES: list[tuple[str, Callable[[Row], bool]]] = [
    (
        "createddate >= '2017-12-31' AND createddate < '2018-01-01'",
        lambda r: "2017-12-31" <= r["createddate"] < "2018-01-01",
    ),
    (
        "createddate between '2017-12-28' and '2017-12-29T12:00:00'",
        lambda r: "2017-12-28T00:00:00.000" <= r["createddate"] <= "2017-12-29T12:00:00.000",
    ),
    ("date_extract_y(updateddate) = 2019", lambda r: r["updateddate"].startswith("2019")),
    ("date_extract_y(createddate) = 2017", lambda r: True),
    ("date_extract_m(closeddate) = 2", lambda r: r.get("closeddate", "")[5:7] == "02"),
    (
        "status = 'Open' OR status = 'Referred Out'",
        lambda r: r["status"] in ("Open", "Referred Out"),
    ),
    (
        "(status = 'Cancelled' OR status = 'Open') AND anonymous = 'Y'",
        lambda r: r["status"] in ("Cancelled", "Open") and r["anonymous"] == "Y",
    ),
    ("status != 'Closed'", lambda r: r["status"] != "Closed"),
    ("NOT status = 'Closed'", lambda r: r["status"] != "Closed"),
    ("status IN ('Open', 'Referred Out')", lambda r: r["status"] in ("Open", "Referred Out")),
    ("requesttype like '%Items%'", lambda r: "Items" in r["requesttype"]),
    ("latitude IS NULL", lambda r: "latitude" not in r),
    ("servicedate IS NOT NULL", lambda r: "servicedate" in r),
    ("cd = 13", lambda r: r.get("cd") == "13"),
    ("cd = '13'", lambda r: r.get("cd") == "13"),
    ("latitude > 34.2", lambda r: "latitude" in r and float(r["latitude"]) > 34.2),
    ("longitude < -118.5", lambda r: "longitude" in r and float(r["longitude"]) < -118.5),
    ("nc <= 9", lambda r: "nc" in r and int(r["nc"]) <= 9),
    ("srnumber > '1-870'", lambda r: r["srnumber"] > "1-870"),
]


@pytest.mark.parametrize(("where", "expected"), WHERE_CASES, ids=[c[0] for c in WHERE_CASES])
def test_where_matches_a_python_filter(
    standin: SocrataStandIn, la311_rows: list[Row], where: str, expected: Callable[[Row], bool]
) -> None:
    assert count(standin, LA, **{"$where": where}) == sum(map(expected, la311_rows))


def test_simple_filter_parameters(standin: SocrataStandIn) -> None:
    # License numbers are not unique: S104449 is two cats.
    rows = get(standin, PETS, license_number="S104449", **{"$order": "animal_s_name"}).json()
    assert [row["animal_s_name"] for row in rows] == ["Freya", "Leonidas"]
    assert count(standin, LA, status="Open") == 5


def test_order_by_several_columns_with_nulls_last(standin: SocrataStandIn) -> None:
    rows = get(standin, LA, **{"$order": "updateddate DESC, srnumber", "$limit": 20_000}).json()
    keys = [(row["updateddate"], row["srnumber"]) for row in rows]
    by_key = sorted(keys, key=lambda k: k[1])
    assert keys == sorted(by_key, key=lambda k: k[0], reverse=True)  # stable: ties by srnumber
    by_service = get(standin, LA, **{"$order": "servicedate", "$limit": 20_000}).json()
    assert ["servicedate" in row for row in by_service] == [True] * 9_499 + [False] * 500
    numeric = get(standin, LA, **{"$order": "nc DESC", "$where": "nc IS NOT NULL"}).json()
    assert [int(row["nc"]) for row in numeric] == sorted(
        (int(row["nc"]) for row in numeric), reverse=True
    )


def test_select_list_headers_and_omitted_nulls(standin: SocrataStandIn) -> None:
    response = get(standin, LA, **{"$select": "srnumber, servicedate AS served, :id"})
    rows = response.json()
    assert json.loads(response.headers["X-SODA2-Fields"]) == ["srnumber", "served", ":id"]
    assert json.loads(response.headers["X-SODA2-Types"]) == [
        "text",
        "floating_timestamp",
        "meta_data",
    ]
    assert {frozenset(row) for row in rows} <= {
        frozenset({"srnumber", "served", ":id"}),
        frozenset({"srnumber", ":id"}),
    }
    system = get(standin, LA, **{"$select": ":*, *", "$limit": 1}).json()[0]
    assert {":id", ":created_at", ":updated_at", "srnumber"} <= set(system)
    aggregates = get(standin, LA, **{"$select": "max(updateddate), count(latitude)"}).json()
    assert aggregates == [{"max_updateddate": "2019-03-12T17:15:04.000", "count_latitude": "8246"}]


def test_serves_the_recorded_null_omission_byte_for_byte() -> None:
    recorded_meta = json.loads((RECORDED / "soda.demo.socrata.com_api_views_w8wm-g3qx.json")
                               .read_text())["response"]["body_json"]  # fmt: skip
    recorded = json.loads((RECORDED / "soda.demo.socrata.com_resource_w8wm-g3qx.json-c3f84c.json")
                          .read_text())["response"]  # fmt: skip
    columns = {c["fieldName"]: c["dataTypeName"] for c in recorded_meta["columns"]}
    with SocrataStandIn() as standin:
        standin.add_dataset("w8wm-g3qx", recorded["body_json"], columns)
        response = get(standin, "w8wm-g3qx", **{"$select": "*", "$order": ":id", "$limit": 10_000})
        ours = metadata(standin, "w8wm-g3qx")
    assert response.text == recorded["body_raw"]  # {"text":"Null"}: the null checkbox is absent
    for header in ("X-SODA2-Fields", "X-SODA2-Types"):
        assert response.headers[header] == recorded["headers"][header]
    assert set(ours) <= set(recorded_meta)
    assert set(ours["columns"][0]) <= set(recorded_meta["columns"][0])


# --- metadata and changes ----------------------------------------------------------------------


def test_metadata_document(standin: SocrataStandIn) -> None:
    document = metadata(standin, LA)
    assert document["id"] == LA
    assert isinstance(document["rowsUpdatedAt"], int)
    assert document["createdAt"] <= document["rowsUpdatedAt"] <= document["viewLastModified"]
    assert document["metadata"]["rowIdentifier"] == "srnumber"
    columns = [(c["fieldName"], c["dataTypeName"], c["position"]) for c in document["columns"]]
    assert columns[:3] == [
        ("srnumber", "text", 1),
        ("createddate", "calendar_date", 2),
        ("updateddate", "calendar_date", 3),
    ]
    assert len(columns) == 33
    assert metadata(standin, PETS)["metadata"]["rowIdentifier"] == 0
    no_json_suffix = requests.get(f"{standin.base_url}/api/views/{LA}", timeout=10)
    assert no_json_suffix.json()["id"] == LA


def small_dataset(standin: SocrataStandIn, dataset: str, la311_rows: list[Row]) -> None:
    standin.add_dataset(dataset, la311_rows[:50], columns_of(LA311_2017_FIELDS), "srnumber")


def test_dropped_rows_updated_at_quirk(standin: SocrataStandIn, la311_rows: list[Row]) -> None:
    small_dataset(standin, "quirk", la311_rows)
    standin.set_metadata_quirk("quirk")
    document = metadata(standin, "quirk")
    assert "rowsUpdatedAt" not in document
    assert isinstance(document["viewLastModified"], int)
    assert "Last-Modified" in get(standin, "quirk").headers
    standin.set_metadata_quirk("quirk", drop_rows_updated_at=False)
    assert "rowsUpdatedAt" in metadata(standin, "quirk")


def test_upsert_changes_rows_updated_at_and_values(
    standin: SocrataStandIn, la311_rows: list[Row]
) -> None:
    small_dataset(standin, "upsert", la311_rows)
    before = metadata(standin, "upsert")
    last_modified = get(standin, "upsert").headers["Last-Modified"]
    old_id = get(standin, "upsert", srnumber="1-870704831", **{"$select": ":id"}).json()[0][":id"]
    changed = {**la311_rows[0], "status": "Open", "updateddate": "2020-01-02T03:04:05.000"}
    new = {"srnumber": "1-999", "createddate": "2020-01-01T00:00:00.000", "status": "Open"}
    standin.upsert_rows("upsert", [changed, new], key="srnumber")

    after = metadata(standin, "upsert")
    assert after["rowsUpdatedAt"] > before["rowsUpdatedAt"]  # even within the same second
    assert after["viewLastModified"] > before["viewLastModified"]
    assert get(standin, "upsert").headers["Last-Modified"] != last_modified
    stored = get(standin, "upsert", srnumber="1-870704831", **{"$select": ":id, *"}).json()
    assert stored[0][":id"] == old_id
    assert (stored[0]["status"], stored[0]["updateddate"]) == ("Open", "2020-01-02T03:04:05.000")
    assert count(standin, "upsert") == 51
    assert count(standin, "upsert", **{"$where": "updateddate >= '2020-01-01'"}) == 1


def test_replace_and_delete(standin: SocrataStandIn, la311_rows: list[Row]) -> None:
    small_dataset(standin, "replace", la311_rows)
    ids = {row[":id"] for row in standin.rows("replace")}
    stamps = [metadata(standin, "replace")["rowsUpdatedAt"]]
    standin.replace_rows("replace", la311_rows[:50])
    assert ids.isdisjoint(row[":id"] for row in standin.rows("replace"))  # a full replace
    stamps.append(metadata(standin, "replace")["rowsUpdatedAt"])
    assert standin.delete_rows("replace", lambda row: row["status"] != "Closed") == 2
    stamps.append(metadata(standin, "replace")["rowsUpdatedAt"])
    assert count(standin, "replace") == 48
    assert stamps == sorted(set(stamps))


# --- app token, errors -------------------------------------------------------------------------


def test_app_token_is_checked_and_never_recorded(standin: SocrataStandIn) -> None:
    url = f"{standin.base_url}/resource/{LA}.json"
    wrong = requests.get(url, headers={"X-App-Token": "wrong"}, timeout=10)
    assert wrong.status_code == 403
    assert wrong.json() == {"message": "Invalid app_token specified", "error": True}
    assert requests.get(url, headers={"X-App-Token": TOKEN}, timeout=10).status_code == 200
    assert requests.get(url, params={"$$app_token": TOKEN}, timeout=10).status_code == 200
    assert requests.get(url, timeout=10).status_code == 200  # anonymous: allowed, throttled
    stats = standin.stats
    assert [r.token_sent for r in stats.requests] == [True, True, True, False]
    assert TOKEN not in repr(stats)


@pytest.mark.parametrize(
    ("param", "value", "column"),
    [
        ("$where", "nope_col = 'x'", 1),
        ("$where", "status = 'Open' AND nope_col IS NULL", 21),
        ("$order", "srnumber, nope_col DESC", 11),
        ("$select", "srnumber, nope_col", 11),
    ],
)
def test_unknown_column_error(standin: SocrataStandIn, param: str, value: str, column: int) -> None:
    response = get(standin, LA, **{param: value})
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "query.soql.no-such-column"
    assert body["message"].startswith(
        "Query coordinator error: query.soql.no-such-column; No such column: nope_col; position: "
    )
    assert body["data"]["column"] == "nope_col"
    assert body["data"]["position"]["column"] == column


@pytest.mark.parametrize(
    "where", ["srnumber = ", "status = 'Open", "status == 'Open'", "(status = 'Open'", "status ~ 1"]
)
def test_malformed_where_error(standin: SocrataStandIn, where: str) -> None:
    response = get(standin, LA, **{"$where": where})
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["error"]) == ("query.compiler.malformed", True)
    assert body["message"].startswith(f'Could not parse SoQL query "{where}" at line 1 character')


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$where": "zipcode = 90026"}, "query.soql.type-mismatch"),
        ({"$where": "createddate > 'yesterday'"}, "query.soql.type-mismatch"),
        ({"$where": "count(*) > 1"}, "query.soql.aggregate-in-ungrouped-context"),
        ({"$where": "soundex(status) = 'x'"}, "query.soql.no-such-function"),
        ({"$select": "srnumber, count(*)"}, "query.soql.column-not-in-group-bys"),
    ],
)
def test_semantic_errors(standin: SocrataStandIn, params: dict[str, str], code: str) -> None:
    response = get(standin, LA, **params)
    assert response.status_code == 400
    assert response.json()["errorCode"] == code


def test_unknown_dataset_and_arguments(standin: SocrataStandIn) -> None:
    missing = get(standin, "abcd-1234")
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "soda.dataset.not-found",
        "errorCode": "soda.dataset.not-found",
        "data": {"dataset": "abcd-1234"},
    }
    views = requests.get(f"{standin.base_url}/api/views/abcd-1234.json", timeout=10)
    assert (views.status_code, views.json()["code"]) == (404, "not_found")
    unknown = get(standin, LA, **{"$bogus": "1"})
    assert unknown.json() == {"error": True, "message": "Unrecognized arguments [bogus]"}
    assert get(standin, LA, **{"$group": "status"}).status_code == 400
    assert get(standin, LA, **{"$limit": "-1"}).json()["code"] == "query.compiler.malformed"


# --- faults and stats --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "retry_after", "body_check"),
    [
        ("429", 429, None, lambda r: r.json()["error"] is True),
        ("429-retry-after-0", 429, "0", lambda r: r.content == b""),
        ("429-retry-after-2", 429, "2", lambda r: r.content == b""),
        ("500", 500, None, lambda r: r.json() == {"error": True, "message": "Internal error", "status": 500}),  # noqa: E501
        ("502", 502, None, lambda r: "Bad Gateway" in r.text),
        ("503", 503, None, lambda r: "Unavailable" in r.text),
        ("html200", 200, None, lambda r: r.text.startswith("<html>")),
    ],
)  # fmt: skip
def test_status_faults(
    standin: SocrataStandIn,
    fault: str,
    status: int,
    retry_after: str | None,
    body_check: Callable[[requests.Response], bool],
) -> None:
    standin.inject(fault)
    response = get(standin, LA, **{"$limit": 1})
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert body_check(response)
    assert get(standin, LA, **{"$limit": 1}).json()[0]["srnumber"]  # only once
    assert standin.stats.faults_served == {fault: 1}


def test_html_page_with_status_200_is_not_json(standin: SocrataStandIn) -> None:
    standin.inject("html200")
    response = get(standin, LA)
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_reset_and_truncate(standin: SocrataStandIn) -> None:
    standin.inject("reset")
    with pytest.raises(requests.ConnectionError):
        get(standin, LA)
    standin.inject("truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(standin, LA)
    assert len(get(standin, LA).json()) == 1_000
    assert standin.stats.faults_served == {"reset": 1, "truncate": 1}


def test_slow_fault(standin: SocrataStandIn) -> None:
    standin.inject("slow:0.5", times=2)
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{standin.base_url}/resource/{LA}.json", timeout=0.2)
    slow = get(standin, LA, **{"$limit": 1})
    assert slow.status_code == 200
    assert slow.elapsed.total_seconds() >= 0.4


def test_count_drift(standin: SocrataStandIn) -> None:
    standin.inject("count-drift:3")
    assert len(get(standin, LA).json()) == 1_000  # not a count: the fault waits
    assert count(standin, LA) == 9_999 + 3
    assert count(standin, LA) == 9_999
    standin.inject("count-drift:-2")
    assert count(standin, LA) == 9_999 - 2


def test_faults_can_target_one_endpoint_several_times(standin: SocrataStandIn) -> None:
    standin.inject("500", times=2, endpoint="views")
    assert get(standin, LA).status_code == 200
    statuses = [
        requests.get(f"{standin.base_url}/api/views/{LA}.json", timeout=10).status_code
        for _ in range(3)
    ]
    assert statuses == [500, 500, 200]
    assert standin.stats.requests_by_endpoint == {"resource": 1, "views": 3}


@pytest.mark.parametrize(
    ("fault", "times", "endpoint"),
    [
        ("teapot", 1, None),
        ("slow:", 1, None),
        ("slow:x", 1, None),
        ("count-drift:1.5", 1, None),
        ("500", 0, None),
        ("500", 1, "catalog"),
    ],
)
def test_bad_faults_are_refused(fault: str, times: int, endpoint: str | None) -> None:
    with pytest.raises(ValueError):
        SocrataStandIn().inject(fault, times=times, endpoint=endpoint)


def test_stats_log_and_concurrency(la311_rows: list[Row]) -> None:
    with SocrataStandIn(latency=0.2) as standin:
        small_dataset(standin, "small", la311_rows)
        threads = [
            threading.Thread(target=get, args=(standin, "small"), kwargs={"$limit": n})
            for n in (1, 2, 3, 4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = standin.stats
        assert stats.peak_concurrency >= 2
        assert stats.max_rows_served == 4
        assert sorted(r.params["$limit"] for r in stats.requests) == ["1", "2", "3", "4"]
        assert {r.path for r in stats.requests} == {"/resource/small.json"}
        standin.reset_stats()
        assert standin.stats.requests == []


# --- the demo process --------------------------------------------------------------------------


def test_demo_process_serves_the_fixtures() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest_assets.standin.socrata_server", "--load-demo",
         "--fixtures", str(FIXTURES)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        counts = {}
        for demo in DEMO_DATASETS:
            url = f"{base_url}/resource/{demo.dataset_id}.json"
            response = requests.get(url, params={"$select": "count(*)"}, timeout=10)
            counts[demo.dataset_id] = int(response.json()[0]["count"])
        assert counts == {"la311-2017": 9_999, "pets-2023": 43_086, "pets-2025": 42_659}
        views = requests.get(f"{base_url}/api/views/la311-2017.json", timeout=10).json()
        assert views["metadata"]["rowIdentifier"] == "srnumber"
    finally:
        process.terminate()
    assert process.wait(timeout=10) == 0
