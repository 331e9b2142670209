"""The analyse step on a labeling job tree the local stack wrote (a recording, copied into moto S3), with
auto-labeling logs in moto logs."""

import io
import json
import time
from types import SimpleNamespace

import boto3
import numpy as np
import pytest
from PIL import Image

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.experiment import ExperimentRun
from ground_truth_pipeline.labeling_output import read_output_manifest
from ground_truth_pipeline.object_store import S3ObjectStore
from ground_truth_pipeline.open_images import ReferenceBox, SelectedImage, selected_images_to_json_lines
from ground_truth_pipeline.steps import analyse_step
from tests.conftest import REGION
from tests.fixtures.recorded_trees import AUTO_JOB, RecordedTree

pytestmark = [pytest.mark.integration, pytest.mark.calendar]

BUCKET = "experiments"
JOB = "gtod-bird-0123456789-label"


@pytest.fixture
def experiment(s3_client):
    s3_client.create_bucket(Bucket=BUCKET)
    run = ExperimentRun("ground_truth_object_detection", "manual__1", BUCKET, "demo", "Bird", "/m/015p6")
    layout = run.layout
    store = S3ObjectStore(s3_client, BUCKET)
    tree = RecordedTree.load(AUTO_JOB)  # 30 images, 5 workers, automated labeling, one not an image
    tree.copy_to(store, layout.labeling_job_key(JOB) + "/", source_prefix=layout.uri("images") + "/")
    manifest = read_output_manifest(store, layout.labeling_job_key(JOB) + "/", "category")
    reference = []
    for index, image in enumerate(manifest.images):
        width, height = tree.image_sizes[index] or (320, 240)
        pixels = np.full((height, width, 3), 180, np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG")
        store.write_bytes(layout.image_key(image.image_id), buffer.getvalue())
        boxes = manifest.consolidated.of_image(index).xyxy
        reference.append(
            SelectedImage(
                image.image_id,
                tuple(ReferenceBox("/m/015p6", b[0], b[2], b[1], b[3], False) for b in boxes.tolist()),
            )
        )
    store.write_bytes(layout.reference_boxes_key, selected_images_to_json_lines(reference).encode())
    store.write_bytes(layout.label_categories_key, json.dumps({"labels": [{"label": "Bird"}]}).encode())
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    now_ms = int(time.time() * 1000)
    for iteration, job_name in tree.training_jobs:
        stream = f"{job_name}/algo-1-1700000000"
        logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
        # The algorithm's lines as AWS documents them, behind its prefix of date, time, level and thread.
        prefix = "[06/18/2019 00:40:23 INFO 140404436858688] "
        messages = [
            f"{prefix}Final configuration: {{u'num_training_samples': u'{40 * iteration}', u'epochs': u'3'}}"
        ]
        messages += [
            f"{prefix}#quality_metric: host=algo-1, epoch={e}, validation mAP <score>=({0.2 * e + 0.1})"
            for e in range(3)
        ]
        logs.put_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream,
            logEvents=[{"timestamp": now_ms + i, "message": m} for i, m in enumerate(messages)],
        )
    return run, tree


def recorded_counts(tree):
    """Consolidated boxes, worker boxes and human-labeled images with boxes, read plainly from the files."""
    lines = [json.loads(line) for line in (tree.folder / "manifests/output/output.manifest").open()]
    consolidated = sum(len(line["category"]["annotations"]) for line in lines if "category" in line)
    worker = 0
    for path in (tree.folder / "annotations/worker-response").rglob("*.json"):
        for answer in json.loads(path.read_text())["answers"]:
            worker += len(answer["answerContent"]["boundingBox"]["boundingBoxes"])
    human_with_boxes = sum(
        1
        for line in lines
        if line["category-metadata"].get("human-annotated") == "yes" and line["category"]["annotations"]
    )
    return consolidated, worker, human_with_boxes


def context(**params):
    defaults = {"task_price_usd": 0.036, "workers_per_image": 5, "workteam_arn": ""}
    return {
        "params": defaults | params,
        "dag": SimpleNamespace(dag_id="ground_truth_object_detection"),
        "run_id": "manual__1",
    }


def test_analyse_writes_metrics_table_and_report(experiment, s3_client):
    run, tree = experiment
    summary = analyse_step.analyse_labels(
        run.as_dict(), {"LabelingJobName": JOB}, context(), clients=AwsClients(conn_id=None)
    )
    layout = run.layout
    metrics = json.loads(s3_client.get_object(Bucket=BUCKET, Key=layout.metrics_key)["Body"].read())
    assert metrics["images"] == 30 == summary["images"]
    assert metrics["failed_images"] == 1 == tree.counters["FailedNonRetryableError"]
    assert metrics["human_labeled_images"] == tree.counters["HumanLabeled"]
    assert metrics["auto_labeled_images"] == tree.counters["MachineLabeled"]
    human_price = 0.08 + 5 * 0.036
    assert metrics["cost_usd"]["human"] == pytest.approx(tree.counters["HumanLabeled"] * human_price)
    assert metrics["cost_usd"]["auto"] == pytest.approx(tree.counters["MachineLabeled"] * 0.08)
    # The reference boxes are the consolidated boxes themselves: every labeled image matches perfectly.
    assert metrics["detection_vs_reference"]["ap50"] == pytest.approx(1.0)
    assert metrics["mean_image_miou"]["auto"] == pytest.approx(1.0)
    assert metrics["reference_boxes"] is True is summary["reference_boxes"]
    consolidated_boxes, _, _ = recorded_counts(tree)
    assert metrics["boxes"]["reference"] == metrics["boxes"]["consolidated"] == consolidated_boxes
    assert 0.5 < metrics["worker_agreement"]["mean_worker_miou_with_consolidated"] < 1.0
    models = metrics["auto_labeling_models"]
    assert [m["training_job"] for m in models] == [name for _, name in tree.training_jobs]
    assert [(m["epochs"], m["final_validation_map"]) for m in models] == [(3, pytest.approx(0.5))] * 2

    table = s3_client.get_object(Bucket=BUCKET, Key=layout.analysis_key("images.csv"))["Body"].read().decode()
    assert len(table.splitlines()) == 31
    written = {
        item["Key"].rsplit("/", 1)[1]
        for item in s3_client.list_objects_v2(Bucket=BUCKET, Prefix=layout.analysis_prefix + "/")["Contents"]
    }
    assert {"metrics.json", "report.html", "images.csv"} <= written
    assert sum(name.endswith(".pdf") for name in written) == 2
    assert sum(name.endswith(".png") for name in written) >= 8
    assert summary["report_uri"] == layout.uri_of_key(layout.analysis_key("report.html"))


def analysis_files(s3_client, layout) -> dict[str, bytes]:
    listed = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=layout.analysis_prefix + "/")["Contents"]
    return {
        item["Key"].rsplit("/", 1)[1]: s3_client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        for item in listed
    }


def test_a_run_on_own_images_reports_what_needs_no_reference_boxes(experiment, s3_client, caplog):
    run, tree = experiment
    layout = run.layout
    # What the prepare step writes for a run on a team's own images (the images_prefix param).
    s3_client.put_object(Bucket=BUCKET, Key=layout.reference_boxes_key, Body=b"")
    with caplog.at_level("INFO", logger=analyse_step.__name__):
        summary = analyse_step.analyse_labels(
            run.as_dict(), {"LabelingJobName": JOB}, context(), clients=AwsClients(conn_id=None)
        )
    files = analysis_files(s3_client, layout)
    metrics = json.loads(files["metrics.json"])
    assert metrics["reference_boxes"] is False
    nulls = {"all": None, "human": None, "auto": None}
    assert metrics["mean_image_miou"] == nulls == metrics["group_miou"]
    assert set(metrics["detection_vs_reference"]) == {
        "precision",
        "recall",
        "ap50",
        "ap",
        "n_images",
        "n_detections",
        "n_references",
    }
    assert set(metrics["detection_vs_reference"].values()) == {None}
    consolidated_boxes, worker_boxes, human_images_with_boxes = recorded_counts(tree)
    assert metrics["boxes"] == {"consolidated": consolidated_boxes, "worker": worker_boxes, "reference": None}
    # What needs no reference is measured as for any run.
    assert metrics["human_labeled_images"] == tree.counters["HumanLabeled"]
    assert metrics["cost_usd"]["human"] == pytest.approx(tree.counters["HumanLabeled"] * (0.08 + 5 * 0.036))
    agreement = metrics["worker_agreement"]
    assert agreement["images"] == human_images_with_boxes
    assert 0.5 < agreement["mean_worker_miou_with_consolidated"] < 1.0
    assert metrics["mean_image_confidence"]["human"] > 0.3

    assert (summary["reference_boxes"], summary["mean_image_miou"], summary["ap50"]) == (False, None, None)
    assert "no reference boxes, so no mIoU or AP50" in caplog.text

    table = files["images.csv"].decode().splitlines()
    header = table[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in table[1:]]
    assert {row["miou"] for row in rows} == {""} == {row["reference_boxes"] for row in rows}

    assert "images-by-miou.pdf" not in files and "miou-histogram.png" not in files
    assert {"images-by-confidence.pdf", "worker-agreement.png", "human-samples.png"} <= set(files)
    html = files["report.html"].decode()
    assert "No reference boxes: this run labeled your own images" in html
    assert "<tr><td>all</td><td>n/a</td></tr>" in html
