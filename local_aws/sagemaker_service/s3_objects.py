"""S3 URIs and object reads for the service's job engines, which must not import the labeling engine.

(``local_aws.groundtruth.s3_objects`` has the same two for labeling jobs; importing it would import the
whole ``groundtruth`` package.)
"""

from __future__ import annotations

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
