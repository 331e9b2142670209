"""What survives ``down`` and ``up`` of the whole stack: objects, jobs, logs, and a job interrupted mid-way.

The module starts its own stack in a tmp data dir (the session's ``local_stack`` is never restarted), fills
it, starts a long labeling job, stops the stack with ``down`` while that job is InProgress, starts it again
and then checks what it finds. ``down --timeout 2`` kills SeaweedFS instead of waiting ~15 s for its clean
stop; its data survives a kill.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ground_truth_pipeline.manifests import input_manifest, parse_output_manifest
from tests.local_aws.conftest import LocalStack, stack_config
from tests.local_aws.test_stack_end_to_end import (
    LABEL_ATTRIBUTE,
    OUTPUT_MANIFEST,
    PROBE_BATCH,
    JobInputs,
    consolidation_entries,
    copy_images,
    ensure_bucket,
    job_prefix,
    job_request,
    list_keys,
    put_job_inputs,
    read_bytes,
    read_lines,
    seed_open_images,
    seeded_image_ids,
    wait_for_job,
    worker_response_files,
)

BUCKET = "restart-e2e"
OBJECTS = {"notes/kept.txt": b"still here after a restart\n", "blobs/random.bin": os.urandom(2 << 20)}
LOG_GROUP = "/local-aws/e2e/restart"
LOG_STREAM = "before-restart"
LOG_MESSAGES = ("first event", "second event", "third event")
COMPLETED_JOB = "restart-completed"
COMPLETED_JOB_IMAGES = 12
INTERRUPTED_JOB = "restart-interrupted"
# Copies of every seeded image: enough objects that the job is still running when `down` stops it.
INTERRUPTED_JOB_COPIES = 15
INTERRUPTED_JOB_WORKERS = 5


@dataclass(frozen=True)
class Restarted:
    """The restarted stack and what was seen of it before ``down`` and just after ``up``."""

    stack: LocalStack
    completed_before: dict[str, Any]
    log_events_before: list[dict[str, Any]]
    interrupted_inputs: JobInputs
    interrupted_source_refs: list[str]
    interrupted_before: dict[str, Any]
    interrupted_after_up: dict[str, Any]

    def client(self, service: str) -> Any:
        return self.stack.config.boto3_client(service)


def _description(job: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if key != "ResponseMetadata"}


def _put_objects(s3: Any) -> None:
    ensure_bucket(s3, BUCKET)
    for key, body in OBJECTS.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _put_log_events(logs: Any) -> list[dict[str, Any]]:
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM)
    start = int(time.time() * 1000)
    events = [{"timestamp": start + i, "message": message} for i, message in enumerate(LOG_MESSAGES)]
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM, logEvents=events)
    return events


def _inputs(s3: Any, prefix: str, copies: list[tuple[str, str]]) -> tuple[JobInputs, list[str]]:
    """Copies of seeded images ``(image id, key)`` and a job's inputs for them; the copies' S3 URIs."""
    source_refs = copy_images(s3, copies, BUCKET)
    return put_job_inputs(s3, BUCKET, prefix, input_manifest(source_refs)), source_refs


def _run_completed_job(s3: Any, sagemaker: Any, image_ids: list[str]) -> dict[str, Any]:
    copies = [(image_id, f"completed/images/{image_id}.jpg") for image_id in image_ids[:COMPLETED_JOB_IMAGES]]
    inputs, _ = _inputs(s3, "completed", copies)
    sagemaker.create_labeling_job(**job_request(COMPLETED_JOB, inputs))
    job = wait_for_job(sagemaker, COMPLETED_JOB)
    assert job["LabelingJobStatus"] == "Completed", job.get("FailureReason")
    return _description(job)


def _start_long_job(
    s3: Any, sagemaker: Any, image_ids: list[str]
) -> tuple[JobInputs, list[str], dict[str, Any]]:
    """A job on many copies of the seeded images, once its probe batch is labeled: it is InProgress."""
    copies = [
        (image_id, f"interrupted/images/{copy}/{image_id}.jpg")
        for copy in range(INTERRUPTED_JOB_COPIES)
        for image_id in image_ids
    ]
    inputs, source_refs = _inputs(s3, "interrupted", copies)
    sagemaker.create_labeling_job(**job_request(INTERRUPTED_JOB, inputs, workers=INTERRUPTED_JOB_WORKERS))
    job = wait_for_job(
        sagemaker, INTERRUPTED_JOB, lambda job: job["LabelCounters"]["TotalLabeled"] >= PROBE_BATCH
    )
    return inputs, source_refs, _description(job)


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restarted]:
    """The module's stack, filled, stopped with `down` while a job runs and started again with `up`."""
    stack = LocalStack(stack_config(tmp_path_factory.mktemp("restart-stack")))
    stack.up()
    try:
        s3, sagemaker = stack.config.boto3_client("s3"), stack.config.boto3_client("sagemaker")
        seed_open_images(stack)
        _put_objects(s3)
        log_events = _put_log_events(stack.config.boto3_client("logs"))
        image_ids = seeded_image_ids(s3)
        completed = _run_completed_job(s3, sagemaker, image_ids)
        inputs, source_refs, interrupted = _start_long_job(s3, sagemaker, image_ids)

        stack.down(timeout_s=2)
        stack.up()

        after_up = stack.config.boto3_client("sagemaker").describe_labeling_job(
            LabelingJobName=INTERRUPTED_JOB
        )
        yield Restarted(
            stack=stack,
            completed_before=completed,
            log_events_before=log_events,
            interrupted_inputs=inputs,
            interrupted_source_refs=source_refs,
            interrupted_before=interrupted,
            interrupted_after_up=_description(after_up),
        )
    finally:
        stack.down(timeout_s=2)


def test_objects_survive(restarted: Restarted) -> None:
    s3 = restarted.client("s3")

    assert {key: read_bytes(s3, BUCKET, key) for key in OBJECTS} == OBJECTS
    assert sorted(list_keys(s3, BUCKET, "notes/")) == ["notes/kept.txt"]


def test_a_completed_job_is_described_as_before(restarted: Restarted) -> None:
    sagemaker = restarted.client("sagemaker")

    after = _description(sagemaker.describe_labeling_job(LabelingJobName=COMPLETED_JOB))

    assert after == restarted.completed_before
    assert after["LabelCounters"]["TotalLabeled"] == COMPLETED_JOB_IMAGES


def test_log_events_survive(restarted: Restarted) -> None:
    logs = restarted.client("logs")

    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM, startFromHead=True)
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]

    assert [(e["timestamp"], e["message"]) for e in events["events"]] == [
        (e["timestamp"], e["message"]) for e in restarted.log_events_before
    ]
    assert [stream["logStreamName"] for stream in streams] == [LOG_STREAM]
    assert LOG_GROUP in [group["logGroupName"] for group in logs.describe_log_groups()["logGroups"]]


def test_a_job_interrupted_mid_way_is_resumed_to_completion(restarted: Restarted) -> None:
    sagemaker = restarted.client("sagemaker")
    total = len(restarted.interrupted_source_refs)
    before, after_up = restarted.interrupted_before, restarted.interrupted_after_up

    job = wait_for_job(sagemaker, INTERRUPTED_JOB)

    assert before["LabelingJobStatus"] == "InProgress" and before["LabelCounters"]["TotalLabeled"] < total
    assert after_up["LabelingJobStatus"] == "InProgress", "the job ended before `down`: make it longer"
    assert job["LabelingJobStatus"] == "Completed", job.get("FailureReason")
    assert (job["LabelingJobArn"], job["CreationTime"]) == (before["LabelingJobArn"], before["CreationTime"])
    assert job["LabelCounters"] == {
        "TotalLabeled": total,
        "HumanLabeled": total,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }


def test_the_resumed_job_writes_one_full_output_tree(restarted: Restarted) -> None:
    s3, sagemaker = restarted.client("s3"), restarted.client("sagemaker")
    wait_for_job(sagemaker, INTERRUPTED_JOB)
    prefix = job_prefix(restarted.interrupted_inputs, INTERRUPTED_JOB)
    total = len(restarted.interrupted_source_refs)

    manifest = parse_output_manifest(read_lines(s3, BUCKET, prefix + OUTPUT_MANIFEST), LABEL_ATTRIBUTE)
    responses = worker_response_files(s3, BUCKET, prefix)
    consolidated = consolidation_entries(s3, BUCKET, prefix)

    assert [image.source_ref for image in manifest.images] == restarted.interrupted_source_refs
    assert manifest.job_name == INTERRUPTED_JOB
    assert all(image.human_annotated and image.failure_reason is None for image in manifest.images)
    assert sorted(responses) == list(range(total))
    assert {len(document["answers"]) for _, document in responses.values()} == {INTERRUPTED_JOB_WORKERS}
    assert sorted(consolidated) == list(range(total))
    assert sorted(list_keys(s3, BUCKET, f"{prefix}manifests/intermediate/")) == [
        f"{prefix}manifests/intermediate/1/output.manifest",
        f"{prefix}manifests/intermediate/2/output.manifest",
    ]
