"""Open the pipeline's inputs by URI: ``s3://bucket/key``, ``https://`` (or ``http://``) URLs and local paths.

Open Images' annotation files are hundreds of megabytes, so every source is returned as a text stream that is
read incrementally, never loaded whole. A missing object, file or URL raises ``FileNotFoundError`` naming the
URI; other failures to reach a source raise ``OSError`` naming the URI and the reason.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from ground_truth_pipeline.object_store import S3ObjectStore, split_s3_uri

HTTP_TIMEOUT_S = 60.0
_S3_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_HTTP_NOT_FOUND_STATUSES = frozenset({404, 410})


def open_text(uri: str, s3_client: Any | None = None, timeout_s: float = HTTP_TIMEOUT_S) -> IO[str]:
    """A UTF-8 text stream of the object at ``uri``, opened with ``newline=""`` as the csv module expects.

    ``s3_client`` (a boto3 S3 client, e.g. ``S3Hook.get_conn()``) is required for ``s3://`` URIs;
    ``timeout_s`` bounds each blocking network operation of an HTTP(S) download.
    """
    scheme = urlparse(uri).scheme
    if scheme == "s3":
        return _open_s3(uri, s3_client)
    if scheme in ("http", "https"):
        return _open_http(uri, timeout_s)
    if scheme in ("", "file"):
        return _open_local(uri)
    raise ValueError(f"Unsupported source {uri!r}: expected s3://, https://, http:// or a local path")


def read_json(uri: str, s3_client: Any | None = None) -> Any:
    """The parsed JSON document at ``uri`` (for small files such as the class hierarchy)."""
    with open_text(uri, s3_client) as stream:
        try:
            return json.load(stream)
        except json.JSONDecodeError as err:
            raise ValueError(f"{uri} is not valid JSON: {err}") from err


def _open_s3(uri: str, s3_client: Any | None) -> IO[str]:
    from botocore.exceptions import ClientError

    if s3_client is None:
        raise ValueError(f"Cannot read {uri}: an S3 client is needed for s3:// sources")
    bucket, key = split_s3_uri(uri)
    if not key:
        raise ValueError(f"Cannot read {uri}: the URI names a bucket but no object key")
    try:
        return S3ObjectStore(s3_client, bucket).open_text(key)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", "")
        reason = f"{code} {message}".strip()
        if code in _S3_NOT_FOUND_CODES:
            raise FileNotFoundError(f"No such S3 object: {uri} ({reason})") from err
        raise OSError(f"Cannot read {uri}: {reason}") from err


def _open_http(uri: str, timeout_s: float) -> IO[str]:
    try:
        response = urllib.request.urlopen(uri, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code in _HTTP_NOT_FOUND_STATUSES:
            raise FileNotFoundError(f"No such URL: {uri} (HTTP {err.code} {err.reason})") from err
        raise OSError(f"Cannot read {uri}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError) as err:
        raise OSError(f"Cannot reach {uri}: {getattr(err, 'reason', err)}") from err
    encoding = response.headers.get_content_charset("utf-8")
    return io.TextIOWrapper(response, encoding=encoding, newline="")


def _open_local(uri: str) -> IO[str]:
    path = Path(urllib.request.url2pathname(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)
    try:
        return path.open(encoding="utf-8", newline="")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"No such file: {uri}") from err
