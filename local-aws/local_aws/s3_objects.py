"""S3 URIs and the few object reads and writes the stack's engines make (labeling, training, transform)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse


def split_s3_uri(uri: str, *, key_required: bool = True) -> tuple[str, str]:
    """``s3://bucket/key`` to ``(bucket, key)``; a ValueError naming the URI for anything else."""
    parsed = urlparse(uri) if isinstance(uri, str) else None
    if parsed is None or parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
        raise ValueError(f"{uri!r} is not an S3 URI (expected s3://<bucket>/<key>)")
    key = parsed.path.lstrip("/")
    if key_required and not key:
        raise ValueError(f"{uri!r} names a bucket but no object (expected s3://<bucket>/<key>)")
    return parsed.netloc, key


def read_object(s3: Any, uri: str) -> bytes:
    """The bytes of the object at ``uri``; botocore's ClientError when it cannot be read."""
    bucket, key = split_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def write_json(s3: Any, bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def write_lines(s3: Any, bucket: str, key: str, lines: list[str]) -> None:
    """A JSON Lines object, each line ending in a newline."""
    body = "".join(line + "\n" for line in lines).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/jsonlines")


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    """Delete every object whose key starts with ``prefix``."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
