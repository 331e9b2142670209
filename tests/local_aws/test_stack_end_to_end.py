"""The whole running stack end to end: labeling jobs as the DAG makes them, bad inputs, the AWS CLI.

Real processes (SeaweedFS, the local SageMaker service, moto) through the session's ``local_stack``. boto3
clients come from the stack's config only and the AWS CLI runs with only the ``env`` variables. Images are
selected from the seeded Open Images files with the pipeline's own code and copied into another bucket, as
the DAG does, so the simulated crowd has to recognise them by their content.

Every job's result follows from its name (the crowd is seeded by it), so the numbers checked here do not
vary between runs; only how far a stopped job got does.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from ground_truth_pipeline.boxes import BoxTable, ltwh_pixels_to_xyxy
from ground_truth_pipeline.instructions import instructions_template
from ground_truth_pipeline.manifests import input_manifest, parse_output_manifest
from ground_truth_pipeline.metrics import class_blind_image_miou
from ground_truth_pipeline.open_images import (
    SelectedImage,
    class_and_subclasses,
    load_class_descriptions,
    reference_box_table,
    resolve_class,
    select_images,
)
from ground_truth_pipeline.sagemaker_requests import PrivateTeam, PublicCrowd, labeling_job_request
from local_aws.environment import stack_variables
from local_aws.synthetic_open_images import BBOX_CSV_KEY, CLASS_DESCRIPTIONS_KEY, HIERARCHY_KEY, image_key
from local_aws.synthetic_open_images import BUCKET as OPEN_IMAGES_BUCKET
from tests.local_aws.conftest import LocalStack

AWS_CLI = Path(sys.executable).parent / "aws"
ROLE_ARN = "arn:aws:iam::123456789012:role/LocalGroundTruth"
REGION = "us-east-1"
SEEDED_IMAGES = 60
LABEL_ATTRIBUTE = "category"
BUCKET = "e2e-labeling"
BIRD_JOB = "e2e-birds-3-workers"
BIRD_IMAGES = 20
WORKERS = 3
# The probe batch Ground Truth sends to workers first: iteration 1; the rest is iteration 2.
PROBE_BATCH = 10
STOP_JOB = "e2e-stop-large"
STOP_JOB_COPIES = 10
MISSING_MANIFEST_JOB = "e2e-bad-missing-manifest"
MALFORMED_MANIFEST_JOB = "e2e-bad-malformed-manifest"
BROKEN_TEMPLATE_JOB = "e2e-bad-template"
FAILING_JOBS = (MISSING_MANIFEST_JOB, MALFORMED_MANIFEST_JOB, BROKEN_TEMPLATE_JOB)
BAD_OBJECTS_JOB = "e2e-bad-objects"
UNKNOWN_WORKTEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/e2e-nobody"
JOB_TIMEOUT_S = 90
POLL_S = 0.05
ENDED = frozenset({"Completed", "Failed", "Stopped"})
OUTPUT_MANIFEST = "manifests/output/output.manifest"
WORKER_RESPONSE = re.compile(r"iteration-(\d+)/(\d+)/\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.json")
CONSOLIDATION_RESPONSE = re.compile(r"iteration-(\d+)/\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.json")
CREATION_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
ANSWER_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# Reading and writing S3.


def read_bytes(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(read_bytes(s3, bucket, key))


def read_lines(s3: Any, bucket: str, key: str) -> list[str]:
    return read_bytes(s3, bucket, key).decode("utf-8").splitlines()


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise


def seed_open_images(stack: LocalStack) -> None:
    """``python -m local_aws seed`` with the DAG test's parameters, so seeding again changes nothing."""
    result = stack.cli("seed", "--images", str(SEEDED_IMAGES))
    assert result.returncode == 0, f"`seed` failed:\n{result.stdout}\n{result.stderr}"


def select_bird_images(s3: Any, count: int) -> list[SelectedImage]:
    """The first ``count`` seeded images with a Bird (or a bird species), as the DAG selects them."""

    def text(key: str) -> io.StringIO:
        return io.StringIO(read_bytes(s3, OPEN_IMAGES_BUCKET, key).decode("utf-8"))

    bird = resolve_class("Bird", load_class_descriptions(text(CLASS_DESCRIPTIONS_KEY)))
    mids = class_and_subclasses(json.load(text(HIERARCHY_KEY)), bird.mid)
    return list(select_images(text(BBOX_CSV_KEY), mids, count).labeled)


def seeded_image_ids(s3: Any) -> list[str]:
    return sorted(
        key.removeprefix("test/").removesuffix(".jpg") for key in list_keys(s3, OPEN_IMAGES_BUCKET, "test/")
    )


def copy_images(s3: Any, copies: Sequence[tuple[str, str]], bucket: str) -> list[str]:
    """Copy seeded images ``(image id, destination key)`` into ``bucket``; their S3 URIs, in order."""

    def copy(image_and_key: tuple[str, str]) -> str:
        image_id, key = image_and_key
        s3.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": OPEN_IMAGES_BUCKET, "Key": image_key(image_id)}
        )
        return f"s3://{bucket}/{key}"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(copy, copies))


@dataclass(frozen=True)
class JobInputs:
    manifest_uri: str
    label_categories_uri: str
    template_uri: str
    output_uri: str


def put_job_inputs(
    s3: Any,
    bucket: str,
    prefix: str,
    manifest: bytes,
    template: str | None = None,
) -> JobInputs:
    """A job's input manifest, label categories and worker UI template under ``s3://bucket/prefix/``."""
    files = {
        "input.manifest": manifest,
        "label-categories.json": json.dumps({"labels": [{"label": "Bird"}]}).encode(),
        "template.liquid": (template or instructions_template("Bird", None)).encode(),
    }
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)
    return JobInputs(
        manifest_uri=f"s3://{bucket}/{prefix}/input.manifest",
        label_categories_uri=f"s3://{bucket}/{prefix}/label-categories.json",
        template_uri=f"s3://{bucket}/{prefix}/template.liquid",
        output_uri=f"s3://{bucket}/{prefix}/output",
    )


# Labeling jobs.


def job_request(name: str, inputs: JobInputs, workers: int = WORKERS, **overrides: Any) -> dict[str, Any]:
    """CreateLabelingJob as the DAG builds it: public crowd, built-in Lambdas, no automated labeling."""
    arguments: dict[str, Any] = {
        "job_name": name,
        "class_name": "Bird",
        "manifest_uri": inputs.manifest_uri,
        "output_uri": inputs.output_uri,
        "role_arn": ROLE_ARN,
        "label_categories_uri": inputs.label_categories_uri,
        "template_uri": inputs.template_uri,
        "region": REGION,
        "workforce": PublicCrowd(task_price_usd="0.036"),
        "auto_labeling": False,
        "label_attribute_name": LABEL_ATTRIBUTE,
        "workers_per_object": workers,
    }
    return labeling_job_request(**(arguments | overrides))


def wait_for_job(
    sagemaker: Any,
    name: str,
    done: Callable[[dict[str, Any]], bool] = lambda job: job["LabelingJobStatus"] in ENDED,
    timeout_s: float = JOB_TIMEOUT_S,
) -> dict[str, Any]:
    """Poll DescribeLabelingJob until ``done`` (by default: the job ended); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = sagemaker.describe_labeling_job(LabelingJobName=name)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"labeling job {name} is still {job['LabelingJobStatus']} after {timeout_s} s: {job}"
            )
        time.sleep(POLL_S)


def job_prefix(inputs: JobInputs, name: str) -> str:
    """The key prefix of a job's output tree, ``<S3OutputPath>/<job name>/``."""
    return f"{inputs.output_uri.split('/', 3)[3]}/{name}/"


def worker_response_files(s3: Any, bucket: str, prefix: str) -> dict[int, tuple[int, Any]]:
    """datasetObjectId → (iteration, the worker-response document); each object must have one file."""
    folder = f"{prefix}annotations/worker-response/"
    files: dict[int, tuple[int, Any]] = {}
    for key in list_keys(s3, bucket, folder):
        match = WORKER_RESPONSE.fullmatch(key.removeprefix(folder))
        assert match is not None, f"unexpected worker-response key {key}"
        iteration, object_id = int(match[1]), int(match[2])
        assert object_id not in files, f"object {object_id} has two worker-response files"
        files[object_id] = (iteration, read_json(s3, bucket, key))
    return files


def consolidation_entries(s3: Any, bucket: str, prefix: str) -> dict[int, tuple[int, Any]]:
    """datasetObjectId → (iteration, its consolidated content); each object must be consolidated once."""
    folder = f"{prefix}annotations/consolidated-annotation/consolidation-response/"
    entries: dict[int, tuple[int, Any]] = {}
    for key in list_keys(s3, bucket, folder):
        match = CONSOLIDATION_RESPONSE.fullmatch(key.removeprefix(folder))
        assert match is not None, f"unexpected consolidation-response key {key}"
        for entry in read_json(s3, bucket, key):
            object_id = int(entry["datasetObjectId"])
            assert object_id not in entries, f"object {object_id} is consolidated twice"
            entries[object_id] = (int(match[1]), entry["consolidatedAnnotation"]["content"])
    return entries


# Fixtures.


@pytest.fixture(scope="module")
def s3(local_stack: LocalStack) -> Any:
    return local_stack.config.boto3_client("s3")


@pytest.fixture(scope="module")
def sagemaker(local_stack: LocalStack) -> Any:
    return local_stack.config.boto3_client("sagemaker")


@pytest.fixture(scope="module")
def seeded(local_stack: LocalStack, s3: Any) -> None:
    """The stack seeded with synthetic Open Images, and the bucket the jobs read and write made."""
    seed_open_images(local_stack)
    ensure_bucket(s3, BUCKET)


@pytest.fixture(scope="module")
def birds(seeded: None, s3: Any) -> list[SelectedImage]:
    """The seeded Bird images to label, with their reference boxes."""
    return select_bird_images(s3, BIRD_IMAGES)


@dataclass(frozen=True)
class FinishedJob:
    name: str
    description: dict[str, Any]
    inputs: JobInputs
    source_refs: list[str]

    @property
    def prefix(self) -> str:
        return job_prefix(self.inputs, self.name)


@pytest.fixture(scope="module")
def bird_job(s3: Any, sagemaker: Any, birds: list[SelectedImage]) -> FinishedJob:
    """20 Bird images copied into another bucket, labeled by 3 workers each, as the DAG runs it."""
    source_refs = copy_images(s3, [(b.image_id, f"birds/images/{b.image_id}.jpg") for b in birds], BUCKET)
    inputs = put_job_inputs(s3, BUCKET, "birds", input_manifest(source_refs))
    sagemaker.create_labeling_job(**job_request(BIRD_JOB, inputs))
    return FinishedJob(BIRD_JOB, wait_for_job(sagemaker, BIRD_JOB), inputs, source_refs)


@pytest.fixture(scope="module")
def output_lines(s3: Any, bird_job: FinishedJob) -> list[str]:
    return read_lines(s3, BUCKET, bird_job.prefix + OUTPUT_MANIFEST)


@dataclass(frozen=True)
class StoppedJob:
    total: int
    while_stopping: dict[str, Any]
    stopped: dict[str, Any]
    inputs: JobInputs


@pytest.fixture(scope="module")
def stopped_job(s3: Any, sagemaker: Any, seeded: None) -> StoppedJob:
    """A job on copies of every seeded image, stopped once its probe batch is labeled."""
    copies = [
        (image_id, f"stop/images/{copy}/{image_id}.jpg")
        for copy in range(STOP_JOB_COPIES)
        for image_id in seeded_image_ids(s3)
    ]
    source_refs = copy_images(s3, copies, BUCKET)
    inputs = put_job_inputs(s3, BUCKET, "stop", input_manifest(source_refs))
    sagemaker.create_labeling_job(**job_request(STOP_JOB, inputs, workers=5))
    wait_for_job(sagemaker, STOP_JOB, lambda job: job["LabelCounters"]["TotalLabeled"] >= PROBE_BATCH)

    sagemaker.stop_labeling_job(LabelingJobName=STOP_JOB)
    while_stopping = sagemaker.describe_labeling_job(LabelingJobName=STOP_JOB)
    stopped = wait_for_job(sagemaker, STOP_JOB)
    return StoppedJob(len(source_refs), while_stopping, stopped, inputs)


# The 20-image, 3-worker job.


def test_the_job_completes_with_every_image_labeled_by_humans(bird_job: FinishedJob) -> None:
    job = bird_job.description
    output_uri = f"{bird_job.inputs.output_uri}/{BIRD_JOB}/{OUTPUT_MANIFEST}"

    assert job["LabelingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["LabelCounters"] == {
        "TotalLabeled": BIRD_IMAGES,
        "HumanLabeled": BIRD_IMAGES,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }
    assert job["LabelingJobOutput"]["OutputDatasetS3Uri"] == output_uri
    assert job["LabelingJobArn"] == f"arn:aws:sagemaker:{REGION}:123456789012:labeling-job/{BIRD_JOB}"
    assert "FailureReason" not in job
    assert job["CreationTime"] <= job["LastModifiedTime"]
    assert job["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] == WORKERS
    assert job["LabelAttributeName"] == LABEL_ATTRIBUTE


def test_the_output_manifest_has_every_input_line_in_order(
    s3: Any, bird_job: FinishedJob, output_lines: list[str]
) -> None:
    manifest = parse_output_manifest(output_lines, LABEL_ATTRIBUTE)
    sizes = []
    for source_ref in bird_job.source_refs:
        with Image.open(io.BytesIO(read_bytes(s3, BUCKET, source_ref.split("/", 3)[3]))) as image:
            sizes.append(image.size)

    assert [json.loads(line)["source-ref"] for line in output_lines] == bird_job.source_refs
    assert manifest.job_name == BIRD_JOB
    assert manifest.class_map == {0: "Bird"}
    assert [(image.width, image.height) for image in manifest.images] == sizes
    assert all(image.human_annotated and image.failure_reason is None for image in manifest.images)
    assert set(manifest.consolidated.image) == set(range(BIRD_IMAGES))  # every image has a Bird
    assert np.all((manifest.consolidated.score >= 0) & (manifest.consolidated.score <= 1))
    for line in output_lines:
        metadata = json.loads(line)[f"{LABEL_ATTRIBUTE}-metadata"]
        assert metadata["job-name"] == f"labeling-job/{BIRD_JOB}"
        assert metadata["type"] == "groundtruth/object-detection"
        datetime.strptime(metadata["creation-date"], CREATION_DATE_FORMAT)


def test_each_object_has_the_answers_of_three_workers_in_its_iteration(
    s3: Any, bird_job: FinishedJob, output_lines: list[str]
) -> None:
    files = worker_response_files(s3, BUCKET, bird_job.prefix)
    time_limit = bird_job.description["HumanTaskConfig"]["TaskTimeLimitInSeconds"]

    assert sorted(files) == list(range(BIRD_IMAGES))
    for object_id, (iteration, document) in files.items():
        assert iteration == (1 if object_id < PROBE_BATCH else 2)
        answers = document["answers"]
        assert len(answers) == WORKERS
        assert len({answer["workerId"] for answer in answers}) == WORKERS
        size = json.loads(output_lines[object_id])[LABEL_ATTRIBUTE]["image_size"][0]
        for answer in answers:
            accepted = datetime.strptime(answer["acceptanceTime"], ANSWER_TIME_FORMAT)
            submitted = datetime.strptime(answer["submissionTime"], ANSWER_TIME_FORMAT)
            assert accepted <= submitted
            assert 0 < answer["timeSpentInSeconds"] <= time_limit
            drawn = answer["answerContent"]["boundingBox"]
            assert drawn["inputImageProperties"] == {"width": size["width"], "height": size["height"]}
            assert {box["label"] for box in drawn["boundingBoxes"]} <= {"Bird"}


def test_consolidation_responses_hold_the_output_manifest_labels(
    s3: Any, bird_job: FinishedJob, output_lines: list[str]
) -> None:
    entries = consolidation_entries(s3, BUCKET, bird_job.prefix)

    assert sorted(entries) == list(range(BIRD_IMAGES))
    for object_id, (iteration, content) in entries.items():
        assert iteration == (1 if object_id < PROBE_BATCH else 2)
        line = json.loads(output_lines[object_id])
        assert content == {key: value for key, value in line.items() if key != "source-ref"}


def test_intermediate_manifests_show_the_labels_of_each_iteration(
    s3: Any, bird_job: FinishedJob, output_lines: list[str]
) -> None:
    folder = f"{bird_job.prefix}manifests/intermediate/"
    first = read_lines(s3, BUCKET, f"{folder}1/output.manifest")
    second = read_lines(s3, BUCKET, f"{folder}2/output.manifest")

    assert sorted(list_keys(s3, BUCKET, folder)) == [
        f"{folder}1/output.manifest",
        f"{folder}2/output.manifest",
    ]
    assert first[:PROBE_BATCH] == output_lines[:PROBE_BATCH]
    assert [json.loads(line) for line in first[PROBE_BATCH:]] == [
        {"source-ref": source_ref} for source_ref in bird_job.source_refs[PROBE_BATCH:]
    ]
    assert second == output_lines


def worker_boxes_by_answer_position(files: dict[int, tuple[int, Any]]) -> list[BoxTable]:
    """One table per answer position: the boxes of every object's first answer, second answer, ..."""
    tables = []
    for position in range(WORKERS):
        image, ltwh, width, height = [], [], [], []
        for object_id, (_, document) in files.items():
            drawn = document["answers"][position]["answerContent"]["boundingBox"]
            for box in drawn["boundingBoxes"]:
                image.append(object_id)
                ltwh.append([box["left"], box["top"], box["width"], box["height"]])
                width.append(drawn["inputImageProperties"]["width"])
                height.append(drawn["inputImageProperties"]["height"])
        xyxy = ltwh_pixels_to_xyxy(np.asarray(ltwh).reshape(-1, 4), np.asarray(width), np.asarray(height))
        tables.append(BoxTable.build(image=image, xyxy=xyxy))
    return tables


def test_consolidated_boxes_match_the_reference_better_than_any_single_worker(
    s3: Any, bird_job: FinishedJob, birds: list[SelectedImage], output_lines: list[str]
) -> None:
    manifest = parse_output_manifest(output_lines, LABEL_ATTRIBUTE)
    reference = reference_box_table({bird.image_id: bird for bird in birds}, [b.image_id for b in birds])
    workers = worker_boxes_by_answer_position(worker_response_files(s3, BUCKET, bird_job.prefix))

    consolidated_miou = class_blind_image_miou(manifest.consolidated, reference, BIRD_IMAGES).mean()
    worker_miou = [class_blind_image_miou(boxes, reference, BIRD_IMAGES).mean() for boxes in workers]

    assert [image.image_id for image in manifest.images] == [bird.image_id for bird in birds]
    assert consolidated_miou > max(worker_miou), (consolidated_miou, worker_miou)
    assert consolidated_miou > 0.6


def test_the_aws_cli_describes_the_job_and_lists_its_output_with_only_the_env_variables(
    local_stack: LocalStack, s3: Any, bird_job: FinishedJob, tmp_path: Path
) -> None:
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **stack_variables(local_stack.config)}

    def aws(*arguments: str) -> str:
        result = subprocess.run(
            [str(AWS_CLI), *arguments], env=environment, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"aws {' '.join(arguments)}: {result.stderr}"
        return result.stdout

    described = json.loads(aws("sagemaker", "describe-labeling-job", "--labeling-job-name", BIRD_JOB))
    output_folder = f"s3://{BUCKET}/{bird_job.prefix}manifests/output/"
    listing = aws("s3", "ls", output_folder)
    responses = aws("s3", "ls", "--recursive", f"s3://{BUCKET}/{bird_job.prefix}annotations/worker-response/")
    size = s3.head_object(Bucket=BUCKET, Key=bird_job.prefix + OUTPUT_MANIFEST)["ContentLength"]

    assert described["LabelingJobStatus"] == "Completed"
    assert described["LabelingJobArn"] == bird_job.description["LabelingJobArn"]
    assert described["LabelCounters"]["TotalLabeled"] == BIRD_IMAGES
    assert described["LabelingJobOutput"]["OutputDatasetS3Uri"] == output_folder + "output.manifest"
    assert listing.split()[-2:] == [str(size), "output.manifest"]
    assert len(responses.splitlines()) == BIRD_IMAGES


# Listing and stopping jobs.


def names_listed(sagemaker: Any, **filters: Any) -> list[str]:
    pages = sagemaker.get_paginator("list_labeling_jobs").paginate(
        PaginationConfig={"PageSize": 2}, **filters
    )
    return [summary["LabelingJobName"] for page in pages for summary in page["LabelingJobSummaryList"]]


def test_list_labeling_jobs_filters_by_status_and_name(
    sagemaker: Any, bird_job: FinishedJob, bad_jobs: dict[str, BadJob]
) -> None:
    completed = names_listed(sagemaker, StatusEquals="Completed", NameContains="e2e-")
    failed = names_listed(sagemaker, StatusEquals="Failed", NameContains="E2E-BAD-")
    summary = sagemaker.list_labeling_jobs(NameContains="birds-3")["LabelingJobSummaryList"]

    assert BIRD_JOB in completed and not set(completed) & set(FAILING_JOBS)
    assert sorted(failed) == sorted(FAILING_JOBS)
    assert [job["LabelingJobName"] for job in summary] == [BIRD_JOB]
    assert summary[0]["LabelingJobStatus"] == "Completed"
    assert summary[0]["LabelCounters"] == bird_job.description["LabelCounters"]
    assert summary[0]["LabelingJobOutput"] == bird_job.description["LabelingJobOutput"]


def test_a_stopped_job_goes_through_stopping_and_keeps_what_was_labeled(
    s3: Any, sagemaker: Any, stopped_job: StoppedJob
) -> None:
    counters = stopped_job.stopped["LabelCounters"]
    prefix = job_prefix(stopped_job.inputs, STOP_JOB)
    lines = [json.loads(line) for line in read_lines(s3, BUCKET, prefix + OUTPUT_MANIFEST)]

    assert stopped_job.while_stopping["LabelingJobStatus"] == "Stopping"
    assert stopped_job.stopped["LabelingJobStatus"] == "Stopped"
    assert PROBE_BATCH <= counters["TotalLabeled"] < stopped_job.total
    assert counters["HumanLabeled"] == counters["TotalLabeled"]
    assert counters["TotalLabeled"] + counters["Unlabeled"] == stopped_job.total
    assert counters["FailedNonRetryableError"] == 0
    assert len(lines) == stopped_job.total
    assert sum(LABEL_ATTRIBUTE in line for line in lines) == counters["TotalLabeled"]
    assert len(worker_response_files(s3, BUCKET, prefix)) == counters["TotalLabeled"]


def test_stopping_a_job_that_ended_is_a_validation_error(sagemaker: Any, bird_job: FinishedJob) -> None:
    with pytest.raises(ClientError) as raised:
        sagemaker.stop_labeling_job(LabelingJobName=BIRD_JOB)

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Completed" in raised.value.response["Error"]["Message"]


# Bad inputs.


@dataclass(frozen=True)
class BadObjects:
    labeled: str
    not_an_image: str
    unseeded_image: str


def unseeded_jpeg() -> bytes:
    """A valid JPEG the stack never seeded: no reference boxes exist for it."""
    pixels = np.linspace(0, 255, 64 * 48 * 3).astype(np.uint8).reshape(48, 64, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bad_objects(s3: Any, birds: list[SelectedImage]) -> BadObjects:
    [labeled] = copy_images(s3, [(birds[0].image_id, "bad/images/bird.jpg")], BUCKET)
    s3.put_object(Bucket=BUCKET, Key="bad/images/notes.jpg", Body=b"meeting notes, not a picture\n")
    s3.put_object(Bucket=BUCKET, Key="bad/images/unseeded.jpg", Body=unseeded_jpeg())
    return BadObjects(
        labeled, f"s3://{BUCKET}/bad/images/notes.jpg", f"s3://{BUCKET}/bad/images/unseeded.jpg"
    )


@dataclass(frozen=True)
class BadJob:
    description: dict[str, Any]
    inputs: JobInputs

    @property
    def status(self) -> str:
        return self.description["LabelingJobStatus"]

    @property
    def failure_reason(self) -> str:
        return self.description.get("FailureReason", "")


@pytest.fixture(scope="module")
def bad_jobs(s3: Any, sagemaker: Any, bad_objects: BadObjects) -> dict[str, BadJob]:
    """Jobs with one bad input each, created together and waited for until they end."""
    good_line = json.dumps({"source-ref": bad_objects.labeled})
    malformed = f'{good_line}\n{{"source-ref": "{bad_objects.labeled}"\n{good_line}\n'.encode()
    broken_template = instructions_template("Bird", None).replace("grant_read_access", "grant_write_access")
    missing = put_job_inputs(s3, BUCKET, "bad/missing", b"")
    inputs = {
        MISSING_MANIFEST_JOB: replace(missing, manifest_uri=f"s3://{BUCKET}/bad/missing/no-such.manifest"),
        MALFORMED_MANIFEST_JOB: put_job_inputs(s3, BUCKET, "bad/malformed", malformed),
        BROKEN_TEMPLATE_JOB: put_job_inputs(
            s3, BUCKET, "bad/template", input_manifest([bad_objects.labeled]), broken_template
        ),
        BAD_OBJECTS_JOB: put_job_inputs(
            s3,
            BUCKET,
            "bad/objects",
            input_manifest([bad_objects.labeled, bad_objects.not_an_image, bad_objects.unseeded_image]),
        ),
    }
    for name, job_inputs in inputs.items():
        sagemaker.create_labeling_job(**job_request(name, job_inputs))
    return {name: BadJob(wait_for_job(sagemaker, name), job_inputs) for name, job_inputs in inputs.items()}


def test_a_missing_manifest_fails_the_job_naming_it(bad_jobs: dict[str, BadJob]) -> None:
    job = bad_jobs[MISSING_MANIFEST_JOB]

    assert job.status == "Failed"
    assert f"Could not read the input manifest {job.inputs.manifest_uri}" in job.failure_reason
    assert "NoSuchKey" in job.failure_reason


def test_a_malformed_manifest_line_fails_the_job_naming_the_line(bad_jobs: dict[str, BadJob]) -> None:
    job = bad_jobs[MALFORMED_MANIFEST_JOB]

    assert job.status == "Failed"
    assert f"Line 2 of the input manifest {job.inputs.manifest_uri} is not valid JSON" in job.failure_reason


def test_a_template_that_does_not_render_fails_the_job_with_liquids_error(
    bad_jobs: dict[str, BadJob],
) -> None:
    job = bad_jobs[BROKEN_TEMPLATE_JOB]

    assert job.status == "Failed"
    assert f"worker UI template {job.inputs.template_uri}" in job.failure_reason
    assert "unknown filter 'grant_write_access'" in job.failure_reason


def test_an_unknown_workteam_is_rejected_at_create(s3: Any, sagemaker: Any, bad_objects: BadObjects) -> None:
    inputs = put_job_inputs(s3, BUCKET, "bad/workteam", input_manifest([bad_objects.labeled]))
    request = job_request("e2e-bad-workteam", inputs, workforce=PrivateTeam(UNKNOWN_WORKTEAM))

    with pytest.raises(ClientError) as raised:
        sagemaker.create_labeling_job(**request)
    with pytest.raises(ClientError) as described:
        sagemaker.describe_labeling_job(LabelingJobName="e2e-bad-workteam")

    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "WorkteamArn" in error["Message"] and UNKNOWN_WORKTEAM in error["Message"]
    assert described.value.response["Error"]["Code"] == "ResourceNotFound"


def test_objects_that_cannot_be_labeled_fail_alone(
    s3: Any, bad_jobs: dict[str, BadJob], bad_objects: BadObjects
) -> None:
    job = bad_jobs[BAD_OBJECTS_JOB]
    prefix = job_prefix(job.inputs, BAD_OBJECTS_JOB)
    manifest = parse_output_manifest(read_lines(s3, BUCKET, prefix + OUTPUT_MANIFEST), LABEL_ATTRIBUTE)
    labeled, not_an_image, unseeded = manifest.images

    assert job.status == "Completed", job.failure_reason
    assert job.description["LabelCounters"] == {
        "TotalLabeled": 1,
        "HumanLabeled": 1,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 2,
        "Unlabeled": 0,
    }
    assert labeled.failure_reason is None and labeled.source_ref == bad_objects.labeled
    assert not_an_image.failure_reason is not None and unseeded.failure_reason is not None
    assert bad_objects.not_an_image in not_an_image.failure_reason
    assert "not an image" in not_an_image.failure_reason
    assert bad_objects.unseeded_image in unseeded.failure_reason
    assert "seeded" in unseeded.failure_reason
    assert sorted(worker_response_files(s3, BUCKET, prefix)) == [0]
    assert sorted(consolidation_entries(s3, BUCKET, prefix)) == [0]


def test_a_missing_job_is_resource_not_found(sagemaker: Any) -> None:
    for call in (sagemaker.describe_labeling_job, sagemaker.stop_labeling_job):
        with pytest.raises(ClientError) as raised:
            call(LabelingJobName="e2e-never-created")
        assert raised.value.response["Error"]["Code"] == "ResourceNotFound"
