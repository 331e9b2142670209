"""Read and write objects by key, in S3 or in a local folder laid out the same way.

The pipeline's readers and report writers take an ``ObjectStore`` rather than an S3 client, so the same
code reads a labeling job's output tree from S3 in the DAG and from a local copy in tests and benchmarks.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlparse


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` to ``(bucket, key)``, the key empty for ``s3://bucket``; a clear error otherwise.

    A query or fragment (``?``, ``#``) is refused rather than silently cut off the key. The stack's
    ``split_s3_uri`` reads URIs the same way; ``test_box_code_agreement.py`` holds the two together.
    """
    parsed = urlparse(uri) if isinstance(uri, str) else None
    if parsed is None or parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
        raise ValueError(f"Not an S3 URI: {uri!r} (expected s3://<bucket>/<key>)")
    return parsed.netloc, parsed.path.lstrip("/")


class ObjectStore(Protocol):
    """The few object operations the pipeline needs, with keys relative to one bucket or folder."""

    def read_bytes(self, key: str) -> bytes: ...

    def open_text(self, key: str) -> IO[str]:
        """A text stream of the object, read incrementally (for files too large to hold in memory)."""
        ...

    def write_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in lexicographic order."""
        ...

    def exists(self, key: str) -> bool: ...


class LocalObjectStore:
    """Objects as files under a root folder; key ``a/b.json`` is the file ``<root>/a/b.json``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open_text(self, key: str) -> IO[str]:
        return self._path(key).open(encoding="utf-8", newline="")

    def write_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        folder = base if base.is_dir() else base.parent
        if not folder.exists():
            return iter(())
        keys = (p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())
        return iter(sorted(k for k in keys if k.startswith(prefix)))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3ObjectStore:
    """Objects of one S3 bucket through a boto3 S3 client (``S3Hook.get_conn()`` in the DAG)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def read_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def open_text(self, key: str) -> IO[str]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return io.TextIOWrapper(io.BufferedReader(_StreamingBodyRaw(body)), encoding="utf-8", newline="")

    def write_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


class _StreamingBodyRaw(io.RawIOBase):
    """Adapts botocore's StreamingBody to ``io.RawIOBase`` so it can be buffered and decoded lazily."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._body.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._body.close()
        super().close()
