"""The labeling engine end to end against an S3 served by moto on a free port, and the request checks.

The images are drawn here with Pillow and recorded in a reference index built here, with known boxes of
birds (the job's label) and of a car (a distractor no worker should box). The output tree is read back
with the pipeline's own readers, to prove that it is in the format they read from AWS.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ground_truth_pipeline.boxes import BoxTable
from ground_truth_pipeline.instructions import instructions_template
from ground_truth_pipeline.labeling_output import (
    load_labeling_dataset,
    read_consolidation_counts,
    read_output_manifest,
)
from ground_truth_pipeline.metrics import class_blind_image_miou
from ground_truth_pipeline.object_store import S3ObjectStore
from local_aws.config import LocalAwsConfig
from local_aws.groundtruth import LabelingJobFailed, check_labeling_job_request, run_labeling_job
from local_aws.reference_index import ReferenceBox, ReferenceImage, ReferenceIndex

pytestmark = pytest.mark.calendar

REGION = "us-east-1"
PUBLIC_CROWD = f"arn:aws:sagemaker:{REGION}:394669845002:workteam/public-crowd/default"
PRE_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:PRE-BoundingBox"
ACS_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:ACS-BoundingBox"
PRIVATE_TEAM = f"arn:aws:sagemaker:{REGION}:123456789012:workteam/private-crowd/team"
BIRD, SPARROW, CAR = "/m/015p6", "/m/0h23m", "/m/0k4j"
CLASS_NAMES = {BIRD: ("Bird", "Animal"), SPARROW: ("Sparrow", "Bird", "Animal"), CAR: ("Car", "Vehicle")}
SEEDED_IMAGES = 12
CORRUPT_LINE, UNKNOWN_LINE = 3, 12  # 0-based: one in the probe iteration, one in the second
WORKERS = 3
MAX_CONCURRENT = 3
WORKER_ID = re.compile(r"public\.us-east-1\.A[0-9A-Z]{13}")
AWS_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@pytest.fixture
def config(tmp_path, moto_s3_port) -> LocalAwsConfig:
    return LocalAwsConfig(data_dir=tmp_path / "local-aws", s3_port=moto_s3_port, region=REGION)


def _scene(rng: np.random.Generator, index: int) -> tuple[bytes, ReferenceImage]:
    """A JPEG with 1-4 birds (ellipses) and a car (a rectangle), and its reference boxes."""
    width, height = int(rng.integers(360, 640)), int(rng.integers(280, 480))
    image = Image.new("RGB", (width, height), (200, 220, 200 + index))
    draw = ImageDraw.Draw(image)
    boxes = []
    n_birds = int(rng.integers(1, 5))
    for slot in range(n_birds + 1):
        # Objects stand in their own column of the image, so none overlaps another.
        column = width / (n_birds + 1)
        box_w = rng.uniform(0.5, 0.9) * column
        box_h = rng.uniform(0.2, 0.5) * height
        x0 = slot * column + rng.uniform(0, column - box_w)
        y0 = rng.uniform(0, height - box_h)
        corners = (x0, y0, x0 + box_w, y0 + box_h)
        is_car = slot == n_birds
        if is_car:
            draw.rectangle(corners, fill=(40, 40, 160))
        else:
            draw.ellipse(corners, fill=(150, 60 + 30 * slot, 20))
        label = CAR if is_car else (SPARROW if slot % 2 else BIRD)
        boxes.append(
            ReferenceBox(label, x0 / width, (x0 + box_w) / width, y0 / height, (y0 + box_h) / height)
        )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), ReferenceImage(f"{index:016x}", width, height, tuple(boxes))


def _unseeded_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 20, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


@dataclass
class Dataset:
    """A bucket holding a job's inputs, and what the job should find."""

    bucket: str
    source_refs: list[str]
    references: dict[int, ReferenceImage]  # by line, for the seeded images
    manifest_lines: list[str] = field(default_factory=list)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def request(self, **human_task: Any) -> dict[str, Any]:
        return {
            "LabelingJobName": "unused-here",
            "LabelAttributeName": "category",
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": self.uri("input.manifest")}}},
            "OutputConfig": {"S3OutputPath": self.uri("output/")},
            "RoleArn": "arn:aws:iam::123456789012:role/GroundTruth",
            "LabelCategoryConfigS3Uri": self.uri("class_labels.json"),
            "HumanTaskConfig": {
                "WorkteamArn": PUBLIC_CROWD,
                "UiConfig": {"UiTemplateS3Uri": self.uri("instructions.template")},
                "PreHumanTaskLambdaArn": PRE_LAMBDA,
                "TaskKeywords": ["Images", "bounding boxes"],
                "TaskTitle": "Bird boxes",
                "TaskDescription": "Draw a box around each bird",
                "NumberOfHumanWorkersPerDataObject": WORKERS,
                "TaskTimeLimitInSeconds": 300,
                "TaskAvailabilityLifetimeInSeconds": 21600,
                "MaxConcurrentTaskCount": MAX_CONCURRENT,
                "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_LAMBDA},
                **human_task,
            },
        }


@pytest.fixture
def dataset(config) -> Dataset:
    s3 = config.boto3_client("s3")
    bucket = f"gt-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    rng = np.random.default_rng(7)
    index = ReferenceIndex(config.reference_index_db)
    index.add_class_names(CLASS_NAMES)
    seeded = [_scene(rng, i) for i in range(SEEDED_IMAGES)]
    index.add_many(seeded)
    objects = [data for data, _ in seeded]
    objects.insert(CORRUPT_LINE, b"\xff\xd8 this is not a JPEG")
    objects.insert(UNKNOWN_LINE, _unseeded_jpeg())
    references = {}
    seeded_refs = iter(ref for _, ref in seeded)
    source_refs = []
    for line, data in enumerate(objects):
        key = f"images/{line:04d}.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        source_refs.append(f"s3://{bucket}/{key}")
        if line not in (CORRUPT_LINE, UNKNOWN_LINE):
            references[line] = next(seeded_refs)
    data = Dataset(bucket, source_refs, references)
    # An extra field on one line must travel to the output unchanged.
    data.manifest_lines = [
        json.dumps({"source-ref": ref, **({"batch": "b1"} if line == 1 else {})})
        for line, ref in enumerate(source_refs)
    ]
    s3.put_object(Bucket=bucket, Key="input.manifest", Body="\n".join(data.manifest_lines) + "\n")
    s3.put_object(Bucket=bucket, Key="class_labels.json", Body=json.dumps({"labels": [{"label": "Bird"}]}))
    s3.put_object(Bucket=bucket, Key="instructions.template", Body=instructions_template("Bird", None))
    return data


@dataclass
class Run:
    result: dict[str, Any] | None = None
    reports: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    stop_checks: int = 0


def _run(
    config: LocalAwsConfig,
    request: dict[str, Any],
    job_name: str = "birds-job",
    stop_after_checks: int | None = None,
) -> Run:
    run = Run()

    def should_stop() -> bool:
        run.stop_checks += 1
        return stop_after_checks is not None and run.stop_checks > stop_after_checks

    run.result = run_labeling_job(
        request,
        job_name=job_name,
        job_arn=f"arn:aws:sagemaker:{REGION}:123456789012:labeling-job/{job_name}",
        config=config,
        report=lambda status, counters: run.reports.append((status, dict(counters))),
        should_stop=should_stop,
    )
    return run


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [key for key in S3ObjectStore(s3, bucket).list_keys(prefix)]


def test_job_labels_every_seeded_image_and_writes_the_whole_output_tree(config, dataset):
    run = _run(config, dataset.request())
    s3 = config.boto3_client("s3")
    prefix = "output/birds-job/"
    n = len(dataset.source_refs)

    assert run.result["status"] == "Completed"
    assert run.result["counters"] == {
        "TotalLabeled": n - 2,
        "HumanLabeled": n - 2,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 2,
        "Unlabeled": 0,
    }
    assert run.result["output_dataset_s3_uri"] == dataset.uri(f"{prefix}manifests/output/output.manifest")
    assert run.reports[0] == ("InProgress", {**run.result["counters"], "TotalLabeled": 0, "HumanLabeled": 0,
                                             "FailedNonRetryableError": 0, "Unlabeled": n})  # fmt: skip
    # The probe batch of 10, then the remaining 4 in batches of MaxConcurrentTaskCount (3).
    assert len(run.reports) == 1 + 1 + 2
    assert [counters["Unlabeled"] for _, counters in run.reports] == [n, n - 10, n - 13, 0]
    assert run.reports[-1] == ("InProgress", run.result["counters"])

    keys = _keys(s3, dataset.bucket, prefix)
    assert f"{prefix}manifests/intermediate/1/output.manifest" in keys
    assert f"{prefix}manifests/intermediate/2/output.manifest" in keys
    consolidation_files = [k for k in keys if "/consolidation-response/" in k]
    assert [k.split("/")[-2] for k in consolidation_files] == ["iteration-1", "iteration-2", "iteration-2"]
    for key in consolidation_files:
        datetime.strptime(key.rsplit("/", 1)[1], "%Y-%m-%d_%H:%M:%S.json")

    store = S3ObjectStore(s3, dataset.bucket)
    manifest = read_output_manifest(store, prefix, "category")
    assert manifest.job_name == "birds-job"
    assert manifest.class_map == {0: "Bird"}
    assert [img.source_ref for img in manifest.images] == dataset.source_refs
    failed = {img.object_id: img.failure_reason for img in manifest.images if img.failure_reason}
    assert set(failed) == {CORRUPT_LINE, UNKNOWN_LINE}
    assert "is not an image" in failed[CORRUPT_LINE]
    assert "No simulated worker can label" in failed[UNKNOWN_LINE]
    assert "seeded" in failed[UNKNOWN_LINE]

    lines = [json.loads(line) for line in manifest.raw_lines]
    assert lines[1]["batch"] == "b1"
    for line_number, line in enumerate(lines):
        if line_number in failed:
            assert "category" not in line
            continue
        reference = dataset.references[line_number]
        label, metadata = line["category"], line["category-metadata"]
        assert label["image_size"] == [{"width": reference.width, "height": reference.height, "depth": 3}]
        assert all(box["class_id"] == 0 for box in label["annotations"])
        assert len(metadata["objects"]) == len(label["annotations"]) > 0
        assert all(0.0 <= obj["confidence"] <= 1.0 for obj in metadata["objects"])
        assert metadata["type"] == "groundtruth/object-detection"
        assert metadata["human-annotated"] == "yes"
        assert metadata["job-name"] == "labeling-job/birds-job"
        datetime.strptime(metadata["creation-date"], "%Y-%m-%dT%H:%M:%S.%f")

    # Consolidation responses carry the same labels as the output manifest, by datasetObjectId.
    consolidated = {}
    for key in consolidation_files:
        for entry in _read_json(s3, dataset.bucket, key):
            consolidated[int(entry["datasetObjectId"])] = entry["consolidatedAnnotation"]["content"]
    assert sorted(consolidated) == sorted(set(range(n)) - set(failed))
    for object_id, content in consolidated.items():
        assert content == {k: lines[object_id][k] for k in ("category", "category-metadata")}
    counts = read_consolidation_counts(store, prefix, "category")
    assert {it: c.images for it, c in counts.items()} == {1: 9, 2: 3}

    # Worker responses: one file per labeled object, in the iteration that labeled it, WORKERS answers.
    response_keys = [k for k in keys if "/worker-response/" in k]
    assert len(response_keys) == n - 2
    for key in response_keys:
        iteration, object_id = key.split("/")[-3:-1]
        assert iteration == ("iteration-1" if int(object_id) < 10 else "iteration-2")
        answers = _read_json(s3, dataset.bucket, key)["answers"]
        assert len({a["workerId"] for a in answers}) == WORKERS
        for answer in answers:
            assert WORKER_ID.fullmatch(answer["workerId"])
            accepted = datetime.strptime(answer["acceptanceTime"], AWS_TIME)
            submitted = datetime.strptime(answer["submissionTime"], AWS_TIME)
            assert 0 < answer["timeSpentInSeconds"] <= 300
            assert abs((submitted - accepted).total_seconds() - answer["timeSpentInSeconds"]) < 0.002
            element = answer["answerContent"]["boundingBox"]
            reference = dataset.references[int(object_id)]
            assert element["inputImageProperties"] == {"width": reference.width, "height": reference.height}
            assert {box["label"] for box in element["boundingBoxes"]} <= {"Bird"}

    # Until iteration 2 ran, its objects' lines were copied unchanged.
    intermediate = s3.get_object(
        Bucket=dataset.bucket, Key=f"{prefix}manifests/intermediate/1/output.manifest"
    )
    intermediate_lines = intermediate["Body"].read().decode().splitlines()
    assert intermediate_lines[10:] == dataset.manifest_lines[10:]
    assert intermediate_lines[:10] == manifest.raw_lines[:10]


def _reference_table(dataset: Dataset) -> BoxTable:
    """The birds (not the car) of each seeded image, normalised xyxy, by line."""
    rows = [
        (line, (box.xmin, box.ymin, box.xmax, box.ymax))
        for line, reference in dataset.references.items()
        for box in reference.boxes
        if box.label != CAR
    ]
    return BoxTable.build(image=[r[0] for r in rows], xyxy=[r[1] for r in rows])


def test_consolidated_labels_beat_every_single_worker(config, dataset):
    _run(config, dataset.request(NumberOfHumanWorkersPerDataObject=5))
    store = S3ObjectStore(config.boto3_client("s3"), dataset.bucket)
    labeled = sorted(dataset.references)
    reference = _reference_table(dataset)
    data = load_labeling_dataset(store, "output/birds-job/", "category", reference, class_names=["Bird"])
    n = len(data.images)
    consolidated_miou = class_blind_image_miou(data.consolidated, reference, n)[labeled].mean()

    # Each worker's answer scored alone, grouped by its position among the object's answers.
    by_position: dict[int, list[float]] = {}
    for image in labeled:
        workers = [w for w in dict.fromkeys(data.workers.worker[data.workers.image == image].tolist())]
        for position, worker in enumerate(workers):
            alone = data.workers.select((data.workers.image == image) & (data.workers.worker == worker))
            by_position.setdefault(position, []).append(
                float(class_blind_image_miou(alone, reference, n)[image])
            )
    single_means = {position: float(np.mean(scores)) for position, scores in by_position.items()}
    assert consolidated_miou > 0.8
    assert all(consolidated_miou > mean for mean in single_means.values()), (consolidated_miou, single_means)


def test_same_job_name_gives_the_same_labels_and_another_name_other_ones(config, dataset):
    s3 = config.boto3_client("s3")

    def labels(job_name: str, output: str) -> list[Any]:
        request = dataset.request()
        request["OutputConfig"]["S3OutputPath"] = dataset.uri(output)
        _run(config, request, job_name=job_name)
        body = s3.get_object(
            Bucket=dataset.bucket, Key=f"{output}/{job_name}/manifests/output/output.manifest"
        )
        return [json.loads(line).get("category") for line in body["Body"].read().decode().splitlines()]

    first = labels("birds-job", "first")
    assert labels("birds-job", "second") == first
    assert labels("other-job", "third") != first


def test_a_rerun_replaces_the_files_of_an_interrupted_run(config, dataset):
    s3 = config.boto3_client("s3")
    stale = "output/birds-job/annotations/worker-response/iteration-1/0/2020-01-01_00:00:00.json"
    s3.put_object(Bucket=dataset.bucket, Key=stale, Body=b'{"answers": []}')
    _run(config, dataset.request())
    assert stale not in _keys(s3, dataset.bucket, "output/birds-job/")


def test_stop_keeps_what_was_labeled(config, dataset):
    run = _run(config, dataset.request(), stop_after_checks=4)
    n = len(dataset.source_refs)
    assert run.result["status"] == "Stopped"
    counters = run.result["counters"]
    assert counters["TotalLabeled"] + counters["FailedNonRetryableError"] == 4
    assert counters["Unlabeled"] == n - 4
    s3 = config.boto3_client("s3")
    body = s3.get_object(Bucket=dataset.bucket, Key="output/birds-job/manifests/output/output.manifest")
    lines = body["Body"].read().decode().splitlines()
    assert len(lines) == n
    assert all("category" in json.loads(line) for line in lines[:CORRUPT_LINE])
    assert lines[4:] == dataset.manifest_lines[4:]
    assert _keys(s3, dataset.bucket, "output/birds-job/manifests/intermediate/2/") == []


def _fails(config: LocalAwsConfig, request: dict[str, Any]) -> str:
    with pytest.raises(LabelingJobFailed) as failure:
        _run(config, request)
    return failure.value.reason


def test_malformed_manifest_line_fails_the_job_naming_the_line(config, dataset):
    s3 = config.boto3_client("s3")
    lines = [*dataset.manifest_lines[:2], '{"source-ref": "s3://b/x.jpg"', *dataset.manifest_lines[2:]]
    s3.put_object(Bucket=dataset.bucket, Key="input.manifest", Body="\n".join(lines))
    reason = _fails(config, dataset.request())
    assert reason.startswith("ClientError: Line 3 of the input manifest ")
    assert "not valid JSON" in reason


def test_missing_manifest_fails_the_job_naming_it(config, dataset):
    request = dataset.request()
    request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"] = dataset.uri("nowhere.manifest")
    reason = _fails(config, request)
    assert dataset.uri("nowhere.manifest") in reason
    assert "NoSuchKey" in reason


def test_template_that_does_not_render_fails_the_job_with_the_renderer_error(config, dataset):
    s3 = config.boto3_client("s3")
    broken = "<crowd-bounding-box name='b' src='{{ task.input.taskObject | grant_read_acces }}'>"
    s3.put_object(Bucket=dataset.bucket, Key="instructions.template", Body=broken)
    reason = _fails(config, dataset.request())
    assert reason.startswith(f"ClientError: The worker UI template {dataset.uri('instructions.template')}")
    assert "unknown filter 'grant_read_acces'" in reason


def test_template_without_a_bounding_box_element_fails_the_job(config, dataset):
    s3 = config.boto3_client("s3")
    s3.put_object(
        Bucket=dataset.bucket, Key="instructions.template", Body="<crowd-form>{{ task.input.taskObject }}"
    )
    assert "not a bounding-box template" in _fails(config, dataset.request())


def test_more_than_ten_labels_fail_the_job(config, dataset):
    s3 = config.boto3_client("s3")
    labels = {"labels": [{"label": f"class {i}"} for i in range(11)]}
    s3.put_object(Bucket=dataset.bucket, Key="class_labels.json", Body=json.dumps(labels))
    assert "at most 10" in _fails(config, dataset.request())


def _request(**changes: Any) -> dict[str, Any]:
    request = Dataset("bucket", [], {}).request()
    for path, value in changes.items():
        *parents, name = path.split("__")
        target = request
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[name]
        else:
            target[name] = value
    return request


def test_request_for_the_public_crowd_and_built_in_lambdas_is_accepted():
    config = LocalAwsConfig(region=REGION)
    check_labeling_job_request(_request(), config)
    other_region_lambda = "arn:aws:lambda:eu-west-1:568282634449:function:PRE-BoundingBox"
    check_labeling_job_request(_request(HumanTaskConfig__PreHumanTaskLambdaArn=other_region_lambda), config)
    check_labeling_job_request(_request(OutputConfig__S3OutputPath="s3://bucket"), config)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"LabelingJobAlgorithmsConfig": {"LabelingJobAlgorithmSpecificationArn": "arn:x"}},
            "'arn:x' is not a Ground Truth labeling algorithm ARN",
        ),
        (
            {"HumanTaskConfig__WorkteamArn": PRIVATE_TEAM},
            "unknown workteam",
        ),
        (
            {"HumanTaskConfig__WorkteamArn": PUBLIC_CROWD.replace(REGION, "eu-west-1")},
            "unknown workteam",
        ),
        (
            {
                "HumanTaskConfig__PreHumanTaskLambdaArn": PRE_LAMBDA.replace(
                    "PRE-BoundingBox", "PRE-ImageMultiClass"
                )
            },
            "not a built-in PRE-BoundingBox Lambda",
        ),
        (
            {
                "HumanTaskConfig__AnnotationConsolidationConfig__AnnotationConsolidationLambdaArn": (
                    "arn:aws:lambda:us-east-1:123456789012:function:ACS-BoundingBox"
                )
            },
            "not a built-in ACS-BoundingBox Lambda",
        ),
        ({"LabelCategoryConfigS3Uri": "https://example.com/labels.json"}, "LabelCategoryConfigS3Uri"),
        ({"InputConfig__DataSource__S3DataSource__ManifestS3Uri": "s3://bucket"}, "ManifestS3Uri"),
        ({"HumanTaskConfig__UiConfig__UiTemplateS3Uri": None}, "UiTemplateS3Uri is required"),
        ({"LabelCategoryConfigS3Uri": None}, "LabelCategoryConfigS3Uri is required"),
    ],
)
def test_request_the_stack_cannot_serve_is_rejected_with_a_clear_message(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_labeling_job_request(_request(**changes), LocalAwsConfig(region=REGION))


def test_run_rejects_an_unservable_request_as_a_failure(config):
    request = _request(HumanTaskConfig__WorkteamArn=PRIVATE_TEAM)
    reason = _fails(config, request)
    assert reason.startswith("ClientError: HumanTaskConfig.WorkteamArn: unknown workteam")
