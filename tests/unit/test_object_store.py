import pytest

from ground_truth_pipeline.object_store import LocalObjectStore, S3ObjectStore, split_s3_uri


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path)
    client = request.getfixturevalue("s3_client")
    client.create_bucket(Bucket="bucket")
    return S3ObjectStore(client, "bucket")


def test_write_read_list_and_exists(store):
    store.write_bytes("run/a/1.json", b'{"x": 1}', content_type="application/json")
    store.write_bytes("run/a/2.json", b"[]")
    store.write_bytes("run/b.txt", b"text")
    store.write_bytes("other/c.txt", b"no")
    assert store.read_bytes("run/a/1.json") == b'{"x": 1}'
    assert list(store.list_keys("run/")) == ["run/a/1.json", "run/a/2.json", "run/b.txt"]
    assert list(store.list_keys("run/a/")) == ["run/a/1.json", "run/a/2.json"]
    assert list(store.list_keys("missing/")) == []
    assert store.exists("run/b.txt")
    assert not store.exists("run/nothing.txt")


def test_open_text_streams_lines(store):
    lines = [f"line {i} ✓\n" for i in range(20000)]
    store.write_bytes("big.txt", "".join(lines).encode())
    with store.open_text("big.txt") as stream:
        assert next(iter(stream)) == lines[0]
        assert sum(1 for _ in stream) == len(lines) - 1


def test_split_s3_uri():
    assert split_s3_uri("s3://bucket/a/b.json") == ("bucket", "a/b.json")
    with pytest.raises(ValueError, match="Not an S3 URI"):
        split_s3_uri("https://bucket/a")
