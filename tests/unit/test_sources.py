from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ground_truth_pipeline.sources import open_text, read_json

CSV_TEXT = 'ImageID,LabelName\n000a1249af2bc5f0,/m/015p6\n"id,with,commas",/m/0bl9f\n'


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static file server on 127.0.0.1 serving ``tmp_path``; yields its base URL and folder."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def s3_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="open-images-dataset")
        yield client


def test_local_path_streams_text(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    with open_text(str(path)) as stream:
        assert stream.read() == CSV_TEXT


def test_file_uri_is_a_local_path(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    with open_text(path.as_uri()) as stream:
        assert stream.read() == CSV_TEXT


def test_missing_local_file_names_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.csv")
    with pytest.raises(FileNotFoundError, match=r"No such file: .*absent\.csv"):
        open_text(missing)


def test_s3_object_is_read(s3_client: Any) -> None:
    s3_client.put_object(Bucket="open-images-dataset", Key="annotations/boxes.csv", Body=CSV_TEXT.encode())
    with open_text("s3://open-images-dataset/annotations/boxes.csv", s3_client) as stream:
        assert stream.readline() == "ImageID,LabelName\n"
        assert stream.read() == CSV_TEXT.split("\n", 1)[1]


def test_missing_s3_object_names_the_uri(s3_client: Any) -> None:
    with pytest.raises(FileNotFoundError, match=r"s3://open-images-dataset/absent\.csv.*NoSuchKey"):
        open_text("s3://open-images-dataset/absent.csv", s3_client)


def test_missing_s3_bucket_names_the_uri(s3_client: Any) -> None:
    with pytest.raises(FileNotFoundError, match=r"s3://no-such-bucket/a\.csv.*NoSuchBucket"):
        open_text("s3://no-such-bucket/a.csv", s3_client)


def test_s3_without_client_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"s3://bucket/key\.csv.*S3 client"):
        open_text("s3://bucket/key.csv")


def test_s3_uri_without_key_is_rejected(s3_client: Any) -> None:
    with pytest.raises(ValueError, match="no object key"):
        open_text("s3://open-images-dataset/", s3_client)


def test_unsupported_scheme_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"gs://bucket/a\.csv"):
        open_text("gs://bucket/a.csv")


def test_http_url_is_read(http_root: tuple[str, Path]) -> None:
    base_url, folder = http_root
    (folder / "boxes.csv").write_text(CSV_TEXT, encoding="utf-8")
    with open_text(f"{base_url}/boxes.csv", timeout_s=5) as stream:
        assert stream.read() == CSV_TEXT


def test_missing_url_names_the_url(http_root: tuple[str, Path]) -> None:
    base_url, _ = http_root
    with pytest.raises(FileNotFoundError, match=rf"{base_url}/absent\.csv.*HTTP 404"):
        open_text(f"{base_url}/absent.csv", timeout_s=5)


def test_unreachable_host_names_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}/boxes.csv"
    with pytest.raises(OSError, match=rf"Cannot reach {url}"):
        open_text(url, timeout_s=2)


def test_http_body_is_streamed_not_read_whole() -> None:
    """The first line arrives while the server still holds back the rest of the body."""
    rest_sent = threading.Event()

    class SlowHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            first, rest = b"ImageID,LabelName\n", b"x,/m/015p6\n" * 1000
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(first) + len(rest)))
            self.end_headers()
            self.wfile.write(first)
            self.wfile.flush()
            time.sleep(1.0)
            self.wfile.write(rest)
            rest_sent.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with open_text(f"http://127.0.0.1:{server.server_port}/boxes.csv", timeout_s=5) as stream:
            assert stream.readline() == "ImageID,LabelName\n"
            assert not rest_sent.is_set()
            assert stream.read().count("\n") == 1000
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_read_json_from_each_scheme(s3_client: Any, http_root: tuple[str, Path]) -> None:
    hierarchy = '{"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/015p6"}]}'
    expected = {"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/015p6"}]}
    base_url, folder = http_root
    (folder / "hierarchy.json").write_text(hierarchy, encoding="utf-8")
    s3_client.put_object(Bucket="open-images-dataset", Key="hierarchy.json", Body=hierarchy.encode())

    assert read_json(str(folder / "hierarchy.json")) == expected
    assert read_json("s3://open-images-dataset/hierarchy.json", s3_client) == expected
    assert read_json(f"{base_url}/hierarchy.json") == expected


def test_read_json_rejects_invalid_json_naming_the_uri(tmp_path: Path) -> None:
    path = tmp_path / "hierarchy.json"
    path.write_text('{"LabelName": ', encoding="utf-8")
    with pytest.raises(ValueError, match=r"hierarchy\.json is not valid JSON"):
        read_json(str(path))
