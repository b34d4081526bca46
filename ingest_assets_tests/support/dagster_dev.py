"""``dagster dev`` (webserver + daemon) in a subprocess, and its GraphQL API, for tests.

Use as a context manager; it waits until the code location has loaded, ``graphql()`` posts a
query like the UI does, and leaving the block stops the whole process group it started. The
server's output goes to ``<home>/dagster_dev.log`` (``log_tail()`` for assertion messages).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests

PROJECT = Path(__file__).resolve().parents[2]
LOADED = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    """``dagster dev -m <module>`` on a free port with ``env`` (DAGSTER_HOME must be in it)."""

    def __init__(
        self,
        env: Mapping[str, str],
        module: str = "ingest_assets.definitions",
        startup_timeout: float = 240.0,
    ) -> None:
        self.env = dict(env)
        self.module = module
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(self.env["DAGSTER_HOME"]) / "dagster_dev.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        dagster = str(Path(sys.executable).with_name("dagster"))
        command = [dagster, "dev", "-m", self.module, "-h", "127.0.0.1", "-p", str(self.port)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                env=self.env,
                cwd=PROJECT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        try:
            self._wait_until_loaded()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_loaded(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"dagster dev exited early:\n{self.log_tail()}")
            try:
                data = self.graphql(LOADED)
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return
            except (requests.RequestException, KeyError, RuntimeError):
                pass
            time.sleep(1.0)
        raise TimeoutError(
            f"dagster dev not ready in {self.startup_timeout:.0f}s:\n{self.log_tail()}"
        )

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the process group this object started, SIGKILL it if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
