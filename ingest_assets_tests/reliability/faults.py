"""Reusable pieces of the reliability suite: fault mixes, table checksums, a canned API.

Kept source-agnostic: a fault mix is any list of fault names queued through an ``inject(fault,
times, endpoint)`` callable (the NASS and Socrata stand-ins both have one), and the checksum works
on any facts table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

Inject = Callable[[str, int, str | None], None]


def inject_mix(inject: Inject, mix: Iterable[tuple[str, int, str | None]]) -> int:
    """Queue each (fault, times, endpoint) of ``mix``; return how many responses will be faulty."""
    total = 0
    for fault, times, endpoint in mix:
        inject(fault, times, endpoint)
        total += times
    return total


def year_checksum(url: str, table: str, year: int, schema: str = "public") -> tuple[int, int, str]:
    """(rows, distinct rows, md5 of all rows in a fixed order) of one year of a facts table."""
    query = sql.SQL(
        "SELECT count(*), count(DISTINCT t::text), "
        "coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') "
        "FROM {}.{} AS t WHERE year = %s"
    ).format(sql.Identifier(schema), sql.Identifier(table))
    with psycopg.connect(url) as conn:
        rows, distinct, digest = conn.execute(query, (year,)).fetchone()
    return rows, distinct, digest


class CannedApi:
    """A tiny HTTP server answering each path from a mutable mapping of path → (status, body).

    For inputs no stand-in produces on purpose (bodies of the wrong shape, drifted records):
    tests put exactly the bytes they want on the wire and point a source's base URL here.
    """

    def __init__(self, answers: Mapping[str, tuple[int, bytes]] | None = None) -> None:
        self.answers: dict[str, tuple[int, bytes]] = dict(answers or {})
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path.strip("/")
                api.requests.append(path)
                status, body = api.answers.get(path, (404, b'{"error": ["not found"]}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/api"

    @contextmanager
    def running(self) -> Iterator[CannedApi]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
