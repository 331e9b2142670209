"""``dag.test()`` of the prepare group against moto's S3: real tasks, real Airflow, offline AWS."""

import json
from datetime import UTC, datetime

import pytest

from ground_truth_pipeline.partitions import image_suffix
from tests.conftest import REGION, ROOT
from tests.fixtures.open_images import tiny_open_images

pytestmark = pytest.mark.integration

SOURCE_BUCKET = "open-images-dataset"
BUCKET = "experiments"


@pytest.fixture
def dag(airflow_db, monkeypatch, mocked_aws):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}})
    )
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["ground_truth_object_detection"]


@pytest.fixture
def open_images(s3_client):
    data = tiny_open_images(n_images=14)
    s3_client.create_bucket(Bucket=SOURCE_BUCKET)
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.put_object(
        Bucket=SOURCE_BUCKET, Key="annotations/test-annotations-bbox.csv", Body=data.bbox_csv
    )
    s3_client.put_object(Bucket=SOURCE_BUCKET, Key="annotations/hierarchy.json", Body=data.hierarchy)
    s3_client.put_object(
        Bucket=SOURCE_BUCKET, Key="annotations/class-descriptions.csv", Body=data.descriptions
    )
    for image_id, jpeg in data.images.items():
        s3_client.put_object(Bucket=SOURCE_BUCKET, Key=f"test/{image_id}.jpg", Body=jpeg)
    return data


def run_conf(**overrides):
    conf = {
        "class_name": "Bird",
        "n_images": 4,
        "n_test_images": 2,
        "bucket": BUCKET,
        "prefix": "demo",
        "open_images_bbox_csv": f"s3://{SOURCE_BUCKET}/annotations/test-annotations-bbox.csv",
        "open_images_hierarchy": f"s3://{SOURCE_BUCKET}/annotations/hierarchy.json",
        "open_images_class_descriptions": f"s3://{SOURCE_BUCKET}/annotations/class-descriptions.csv",
        "open_images_images": f"s3://{SOURCE_BUCKET}/test/",
    }
    conf.update(overrides)
    return conf


def keys(s3_client, prefix=""):
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def test_prepare_group_writes_the_labeling_inputs(dag, open_images, s3_client):
    prepare = dag.partial_subset(task_ids=["prepare.write_labeling_inputs"], include_upstream=True)
    dag_run = prepare.test(run_conf=run_conf())
    assert dag_run.state == "success"

    written = [key for key in keys(s3_client, "demo/bird/") if "/labeled-images/" not in key]
    run_root = written[0].split("/")[2]
    root = f"demo/bird/{run_root}"
    bird_ids = [i for i, boxes in open_images.boxes.items() if boxes[0][0] != "/m/0k4j"]
    labeled, held_out = bird_ids[:4], bird_ids[4:6]
    assert len(keys(s3_client, "demo/bird/labeled-images/")) == len(labeled)
    assert set(written) == {
        *(f"{root}/images/{i}.jpg" for i in labeled),
        *(f"{root}/test-images/{i}.jpg" for i in held_out),
        f"{root}/input.manifest",
        f"{root}/class_labels.json",
        f"{root}/instructions.template",
        f"{root}/reference-boxes.jsonl",
        f"{root}/selection.json",
    }
    manifest = s3_client.get_object(Bucket=BUCKET, Key=f"{root}/input.manifest")["Body"].read().decode()
    assert [json.loads(line) for line in manifest.splitlines()] == [
        {"source-ref": f"s3://{BUCKET}/{root}/images/{i}.jpg"} for i in labeled
    ]
    categories = json.loads(
        s3_client.get_object(Bucket=BUCKET, Key=f"{root}/class_labels.json")["Body"].read()
    )
    assert categories == {"labels": [{"label": "Bird"}]}
    template = (
        s3_client.get_object(Bucket=BUCKET, Key=f"{root}/instructions.template")["Body"].read().decode()
    )
    assert "{{ task.input.taskObject | grant_read_access }}" in template
    assert "data:image/png;base64," in template
    copied = s3_client.get_object(Bucket=BUCKET, Key=f"{root}/images/{labeled[0]}.jpg")["Body"].read()
    assert copied == open_images.images[labeled[0]]
    selection = json.loads(s3_client.get_object(Bucket=BUCKET, Key=f"{root}/selection.json")["Body"].read())
    assert selection["class_mid"] == "/m/015p6"
    assert set(selection["class_and_subclasses"]) == {"/m/015p6", "/m/0dftk", "/m/0f6wt"}


def test_an_unknown_class_fails_the_run_with_suggestions(dag, open_images, s3_client, capfd):
    prepare = dag.partial_subset(task_ids=["prepare.select_images"], include_upstream=True)
    dag_run = prepare.test(run_conf=run_conf(class_name="Brid"))
    assert dag_run.state == "failed"
    assert "Unknown Open Images class 'Brid'" in capfd.readouterr().out
    assert keys(s3_client) == []


def test_a_missing_bucket_fails_before_anything_is_written(dag, open_images, s3_client, capfd):
    prepare = dag.partial_subset(task_ids=["prepare.select_images"], include_upstream=True)
    dag_run = prepare.test(run_conf=run_conf(bucket="no-such-bucket"))
    assert dag_run.state == "failed"
    assert "S3 bucket 'no-such-bucket' is not usable: NoSuchBucket" in capfd.readouterr().out
    assert keys(s3_client) == []


INCOMING = f"s3://{BUCKET}/incoming/dt={{{{ ds }}}}/"
DAY = datetime(2026, 12, 5, 6, tzinfo=UTC)


def upload_partition(s3_client, open_images, day: str, names: list[str]) -> list[str]:
    """Copies of the tiny Open Images into ``incoming/dt=<day>/``; the URIs, in key order."""
    images = list(open_images.images.values())
    keys = [f"incoming/dt={day}/{name}" for name in names]
    for index, key in enumerate(keys):
        s3_client.put_object(Bucket=BUCKET, Key=key, Body=images[index % len(images)])
    return sorted(f"s3://{BUCKET}/{key}" for key in keys)


def partition_run(dag, **overrides):
    prepare = dag.partial_subset(task_ids=["prepare.write_labeling_inputs"], include_upstream=True)
    conf = run_conf(images_prefix=INCOMING, n_images=3, n_test_images=1, class_name="Bird") | overrides
    return prepare.test(run_conf=conf, logical_date=DAY)


def selections(s3_client):
    found = [key for key in keys(s3_client, "demo/bird/") if key.endswith("/selection.json")]
    return [json.loads(s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in found]


def test_a_run_labels_the_images_of_its_own_partition(dag, open_images, s3_client):
    upload_partition(s3_client, open_images, "2026-12-04", ["yesterday.jpg"])
    uris = upload_partition(
        s3_client, open_images, "2026-12-05", ["b/2.jpeg", "a.jpg", "c/d/e.png", "f.jpg", "z.jpg"]
    )
    s3_client.put_object(Bucket=BUCKET, Key="incoming/dt=2026-12-05/b/1.jpg", Body=b"GIF89a not a jpeg")
    s3_client.put_object(Bucket=BUCKET, Key="incoming/dt=2026-12-05/readme.txt", Body=b"notes")

    assert partition_run(dag, extra_label_categories=["Car", "Bird"]).state == "success"

    (selection,) = selections(s3_client)
    assert selection["label_categories"] == ["Bird", "Car"]
    labeled = [selection["source_uris"][i] for i in selection["labeled_image_ids"]]
    held_out = [selection["source_uris"][i] for i in selection["held_out_image_ids"]]
    assert labeled == uris[:3] and held_out == uris[3:4]
    assert [item["uri"] for item in selection["not_images"]] == [
        f"s3://{BUCKET}/incoming/dt=2026-12-05/b/1.jpg"
    ]
    assert selection["images_prefix"] == f"s3://{BUCKET}/incoming/dt=2026-12-05/"
    root = "/".join(
        next(k for k in keys(s3_client, "demo/bird/") if k.endswith("/selection.json")).split("/")[:3]
    )
    manifest = s3_client.get_object(Bucket=BUCKET, Key=f"{root}/input.manifest")["Body"].read().decode()
    sources = [json.loads(line)["source-ref"] for line in manifest.splitlines()]
    suffixes = [image_suffix(uri) for uri in labeled]
    assert sources == [
        f"s3://{BUCKET}/{root}/images/{i}{suffix}"
        for i, suffix in zip(selection["labeled_image_ids"], suffixes, strict=True)
    ]
    assert sorted(suffixes) == [".jpeg", ".jpg", ".png"]
    template = s3_client.get_object(Bucket=BUCKET, Key=f"{root}/instructions.template")["Body"].read()
    assert b"data:image/png;base64," not in template
    assert b"Draw a tight box around every Bird or Car in this image." in template
    categories = json.loads(
        s3_client.get_object(Bucket=BUCKET, Key=f"{root}/class_labels.json")["Body"].read()
    )
    assert categories == {"labels": [{"label": "Bird"}, {"label": "Car"}]}
    assert s3_client.get_object(Bucket=BUCKET, Key=f"{root}/reference-boxes.jsonl")["Body"].read() == b""
    assert len(keys(s3_client, "demo/bird/labeled-images/")) == 3


def test_a_second_run_over_a_labeled_partition_pays_for_nothing(dag, open_images, s3_client, monkeypatch):
    from ground_truth_pipeline.steps import claims

    upload_partition(s3_client, open_images, "2026-12-05", ["a.jpg", "b.jpg"])
    assert partition_run(dag, n_images=2).state == "success"
    monkeypatch.setattr(claims, "labeling_job_status", lambda sagemaker, job_name: "InProgress")

    second = partition_run(dag, n_images=2)

    assert second.state == "success"
    states = {ti.task_id: ti.state for ti in second.get_task_instances()}
    assert states == {
        "prepare.select_images": "skipped",
        "prepare.copy_images": "skipped",
        "prepare.write_labeling_inputs": "skipped",
    }
    assert len(selections(s3_client)) == 1


def test_an_empty_partition_skips_the_run_and_writes_nothing(dag, open_images, s3_client):
    upload_partition(s3_client, open_images, "2026-12-04", ["yesterday.jpg"])
    run = partition_run(dag)
    assert run.state == "success"
    assert {ti.state for ti in run.get_task_instances()} == {"skipped"}
    assert keys(s3_client, "demo/") == []


@pytest.mark.parametrize(
    ("images_prefix", "message"),
    [
        (
            "incoming/dt={{ ds }}/",
            "rendered to 'incoming/dt=2026-12-05/', which is not an s3://bucket/prefix/",
        ),
        ("s3://no-such-bucket/dt={{ ds }}/", "the bucket 'no-such-bucket' does not exist"),
    ],
)
def test_a_bad_images_prefix_fails_before_anything_is_written(
    dag, open_images, s3_client, capfd, images_prefix, message
):
    run = partition_run(dag, images_prefix=images_prefix)
    assert run.state == "failed"
    assert message in capfd.readouterr().out
    assert keys(s3_client, "demo/") == []
