"""Talking to a running Dagster webserver the way the UI does: GraphQL over HTTP.

Pairs with ``ingest_assets_tests.ui.dagster_dev.dagster_dev`` (which starts ``dagster dev``):
``wait_for_code`` waits until the code location has loaded, ``graphql`` posts one query.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


# The UI backfill dialog's mutation, and the status it polls until one of BACKFILL_DONE.
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
  }
}"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status }
  }
}"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
BACKFILL_SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}
# The UI's "Reload" of a code location: dagster dev's code server starts a new gRPC server.
RELOAD_LOCATION = """
mutation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry { loadStatus }
    ... on PythonError { message }
  }
}"""
POOL_LIMITS = "{ instance { concurrencyLimits { concurrencyKey slotCount } } }"


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """POST ``query`` to ``<url>/graphql``; the ``data`` of the answer, or an error naming why."""
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors from {url}: {body['errors']}")
    return body["data"]


def wait_for_code(url: str, timeout: float = 240.0) -> None:
    """Wait until every code location of the webserver at ``url`` has loaded."""
    deadline = time.monotonic() + timeout
    entries: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        entries = graphql(url, LOCATIONS)["workspaceOrError"].get("locationEntries") or []
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            return
        time.sleep(1.0)
    raise TimeoutError(f"code locations at {url} not loaded after {timeout:.0f}s: {entries}")


def launch_backfill(url: str, partitions: list[str] | None, assets: list[list[str]]) -> str:
    """Launch a backfill of the assets (key paths) as the UI's backfill dialog does: of the
    ``partitions`` they share, or with None of every partition of each (the dialog's only choice
    when their partitions definitions differ: ``allPartitions``). Its id, or an error quoting the
    answer."""
    params: dict[str, Any] = {"assetSelection": [{"path": path} for path in assets], "tags": []}
    if partitions is None:
        params["allPartitions"] = True
    else:
        params.update(partitionNames=partitions, fromFailure=False)
    launched = graphql(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"the backfill launch failed: {launched}")
    return launched["backfillId"]


def backfill_status(url: str, backfill_id: str) -> str:
    """The backfill's status as the UI shows it (``REQUESTED``, ``COMPLETED_SUCCESS``, ...)."""
    answer = graphql(url, BACKFILL_STATUS, {"id": backfill_id})
    return answer["partitionBackfillOrError"]["status"]


def reload_location(url: str, name: str) -> None:
    """Reload the code location ``name`` as the UI's "Reload" button does, and wait until every
    location has loaded again."""
    answer = graphql(url, RELOAD_LOCATION, {"name": name})["reloadRepositoryLocation"]
    if answer["__typename"] != "WorkspaceLocationEntry":
        raise RuntimeError(f"reloading the code location {name!r} failed: {answer}")
    wait_for_code(url)


def pool_limits(url: str) -> dict[str, int]:
    """Each pool's limit as the instance holds it (Deployment → Concurrency in the UI)."""
    limits = graphql(url, POOL_LIMITS)["instance"]["concurrencyLimits"]
    return {item["concurrencyKey"]: item["slotCount"] for item in limits}
