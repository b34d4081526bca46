"""The stand-in's SODA3 queries, Metadata API v1 and catalog answers, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from ingest_assets.standin.socrata_data import LA311_2017_FIELDS, columns_of, rows_from_portal_csv
from ingest_assets.standin.socrata_server import SocrataStandIn
from ingest_assets.standin.socrata_soda3 import deep_offsets

LA311_CSV = (
    Path(__file__).parent.parent
    / "fixtures/socrata/la311/MyLA311_Service_Request_Data_2017_Subset.csv.gz"
)
TOKEN = "test-app-token"
LA = "la311-2017"


@pytest.fixture(scope="module")
def standin() -> Iterator[SocrataStandIn]:
    server = SocrataStandIn(app_token=TOKEN)
    rows = rows_from_portal_csv(LA311_CSV, LA311_2017_FIELDS)
    server.add_dataset(LA, rows, columns_of(LA311_2017_FIELDS), "srnumber", name="LA 2017")
    with server:
        yield server


def query(standin: SocrataStandIn, body: object, token: str | None = TOKEN) -> requests.Response:
    return requests.post(
        f"{standin.base_url}/api/v3/views/{LA}/query.json",
        json=body,
        headers={"X-App-Token": token} if token else {},
        timeout=10,
    )


def test_soda3_refuses_a_request_without_a_token_and_a_wrong_one(standin: SocrataStandIn) -> None:
    body = {"query": "SELECT srnumber", "page": {"pageNumber": 1, "pageSize": 5}}
    anonymous = query(standin, body, token=None)
    assert anonymous.status_code == 403
    assert anonymous.json() == {
        "message": "You must be logged in to access this resource",
        "error": True,
    }
    assert query(standin, body, token="wrong").status_code == 403
    soda2 = requests.get(f"{standin.base_url}/resource/{LA}.json", timeout=10)
    assert soda2.status_code == 200  # 2.1 still serves anonymous callers


def test_soda3_pages_are_the_same_rows_as_soda2_offsets(standin: SocrataStandIn) -> None:
    soql = "SELECT srnumber, updateddate WHERE nc > 10 ORDER BY srnumber, :id"
    pages = []
    for number in (1, 2, 3):
        answer = query(standin, {"query": soql, "page": {"pageNumber": number, "pageSize": 700}})
        assert answer.status_code == 200, answer.text
        pages.append(answer)
    assert pages[0].content.startswith(b"[\n{") and pages[0].content.endswith(b"}\n]\n")
    v3 = [row for page in pages for row in page.json()]
    v2 = requests.get(
        f"{standin.base_url}/resource/{LA}.json",
        params={
            "$select": "srnumber, updateddate",
            "$where": "nc > 10",
            "$order": "srnumber, :id",
            "$limit": 2100,
        },
        timeout=10,
    ).json()
    assert v3 == v2 and len(v3) == 2100
    past = query(standin, {"query": soql, "page": {"pageNumber": 1000, "pageSize": 700}})
    assert past.content == b"[\n]\n"  # as recorded from a real SODA3 portal


def test_soda3_offsets_beyond_the_first_page_are_recorded(standin: SocrataStandIn) -> None:
    standin.reset_stats()
    for number in (1, 2):
        query(standin, {"query": "SELECT srnumber", "page": {"pageNumber": number, "pageSize": 9}})
    recorded = [r for r in standin.stats.requests if r.endpoint == "resource"]
    assert [r.path for r in recorded] == [f"/api/v3/views/{LA}/query.json"] * 2
    assert deep_offsets(r.params for r in recorded) == [9]


@pytest.mark.parametrize(
    ("body", "status", "key", "value"),
    [
        ({"page": {"pageNumber": 1, "pageSize": 1}}, 400, "code", "query.compiler.malformed"),
        ({"query": "srnumber WHERE nc > 1"}, 400, "code", "query.compiler.malformed"),
        (
            {"query": "SELECT srnumber", "page": {"pageNumber": 0, "pageSize": 1}},
            400,
            "code",
            "query.compiler.malformed",
        ),
        (
            {"query": "SELECT srnumber WHERE nope_col = 'x'"},
            400,
            "errorCode",
            "query.soql.no-such-column",
        ),
    ],
)
def test_soda3_rejects_bad_bodies_like_the_service(
    standin: SocrataStandIn, body: object, status: int, key: str, value: str
) -> None:
    answer = query(standin, body)
    assert answer.status_code == status and answer.json()[key] == value


def test_a_where_keyword_inside_a_string_literal_is_not_a_clause(standin: SocrataStandIn) -> None:
    answer = query(standin, {"query": "SELECT srnumber WHERE status = 'ORDER BY WHERE'"})
    assert answer.status_code == 200 and answer.json() == []


def test_metadata_v1_and_the_catalog_carry_iso_data_updated_stamps(
    standin: SocrataStandIn,
) -> None:
    views = requests.get(f"{standin.base_url}/api/views/{LA}.json", timeout=10).json()
    v1 = requests.get(f"{standin.base_url}/api/views/metadata/v1/{LA}", timeout=10).json()
    stamp = datetime.fromtimestamp(views["rowsUpdatedAt"], UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert v1["dataUpdatedAt"] == stamp and v1["name"] == "LA 2017"
    found = requests.get(
        f"{standin.base_url}/api/catalog/v1", params={"ids": f"{LA},nope-0000"}, timeout=10
    ).json()
    assert found["results"] == [
        {"resource": {"id": LA, "name": "LA 2017", "data_updated_at": stamp}}
    ]
    standin.drop_metadata_fields(LA, "dataUpdatedAt")
    try:
        v1 = requests.get(f"{standin.base_url}/api/views/metadata/v1/{LA}", timeout=10).json()
        assert "dataUpdatedAt" not in v1 and "metadataUpdatedAt" in v1
    finally:
        standin.drop_metadata_fields(LA)
