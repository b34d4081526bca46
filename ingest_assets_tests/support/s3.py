"""A real S3 endpoint on a socket: moto's server mode, as s3fs's own tests use it.

``S3Endpoint`` serves the S3 API over HTTP on the given address, creates one bucket with
versioning on (so every object ever written, and every deletion, stays visible to the test), and
gives the environment a process needs to stage there: credentials and endpoint in the standard
AWS variables, read by botocore alone. The secret key is distinctive so that the secrets scans can
search every trace for it.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY = "AKIAINGESTTESTS3KEY01"
SECRET_KEY = "s3-secret-9d41c7e0-STAGING-aa27f3"
REGION = "us-east-1"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class S3Endpoint:
    """moto's S3 on ``host``, one versioned bucket; use as a context manager."""

    def __init__(self, bucket: str, host: str = "127.0.0.1") -> None:
        self.bucket = bucket
        self.host = host
        self.port = free_port(host)
        self._server = ThreadedMotoServer(ip_address=host, port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """What a process needs to reach the bucket, and only through these variables."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance-metadata address
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def __enter__(self) -> S3Endpoint:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        self._server.start()
        client = self.client()
        client.create_bucket(Bucket=self.bucket)
        client.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every current object under ``prefix``: key → content."""
        client = self.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return {key: client.get_object(Bucket=self.bucket, Key=key)["Body"].read() for key in keys}

    def history(self, prefix: str = "") -> tuple[list[str], list[str]]:
        """(keys of every version ever written, keys of every deletion) under ``prefix``."""
        client = self.client()
        pages = client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        written: list[str] = []
        deleted: list[str] = []
        for page in pages:
            written += [v["Key"] for v in page.get("Versions", [])]
            deleted += [m["Key"] for m in page.get("DeleteMarkers", [])]
        return written, deleted

    def open_uploads(self) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted."""
        uploads = self.client().list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in uploads.get("Uploads", [])]
