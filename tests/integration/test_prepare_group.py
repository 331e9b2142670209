"""``dag.test()`` of the prepare group against moto's S3: real tasks, real Airflow, offline AWS."""

import json

import pytest

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

    written = keys(s3_client, "demo/bird/")
    run_root = written[0].split("/")[2]
    root = f"demo/bird/{run_root}"
    bird_ids = [i for i, boxes in open_images.boxes.items() if boxes[0][0] != "/m/0k4j"]
    labeled, held_out = bird_ids[:4], bird_ids[4:6]
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
