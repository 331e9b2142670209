"""Fake job engines for the supervisor's worker processes, and what tests of them share.

The engines run in spawned workers, which import them by this module's name. Each notes its starts in
``<data dir>/starts-<job>`` so tests can count attempts, and a job told to wait runs until the test
creates ``<data dir>/release-<job>`` (``release``) or asks it to stop. A labeling job's "mode" tag
chooses what its fake engine does.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.job_runner import Engine

TIMEOUT_S = 15
PUBLIC_CROWD = "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default"
ACS_LAMBDA = "arn:aws:lambda:us-east-1:432418664414:function:ACS-BoundingBox"
OUTPUT_MANIFEST = "manifests/output/output.manifest"


class FakeJobFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fake_labeling(
    request: dict[str, Any],
    *,
    job_name: str,
    job_arn: str,
    config: LocalAwsConfig,
    report: Callable[[str, dict[str, int]], None],
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    """Labels 4 objects. Modes: quick, wait, ignore-stop (waits through stop requests), fail (a
    ClientError), crash (any other exception), exit (the process dies), terminated-once (SIGTERM on the
    first attempt), bad-result (an unknown status)."""
    mode = {tag["Key"]: tag["Value"] for tag in request.get("Tags", [])}.get("mode", "quick")
    _note_start(config, job_name)
    output = f"{request['OutputConfig']['S3OutputPath']}/{job_name}/{OUTPUT_MANIFEST}"
    report("InProgress", {"Unlabeled": 4})
    if mode == "fail":
        raise FakeJobFailed("ClientError: the input manifest is malformed")
    if mode == "crash":
        raise RuntimeError("boom")
    if mode == "exit":
        os._exit(3)
    if mode == "terminated-once" and starts(config, job_name) == 1:
        os.kill(os.getpid(), signal.SIGTERM)
    if mode == "bad-result":
        return {"status": "Weird"}
    if mode in ("wait", "ignore-stop"):
        while not _released(config, job_name):
            if mode == "wait" and should_stop():
                counters = {"TotalLabeled": 1, "HumanLabeled": 1, "Unlabeled": 3}
                return {"status": "Stopped", "counters": counters}
            time.sleep(0.05)
    report("InProgress", {"TotalLabeled": 2, "HumanLabeled": 2, "Unlabeled": 2})
    return {
        "status": "Completed",
        "counters": {"TotalLabeled": 4, "HumanLabeled": 4},
        "output_dataset_s3_uri": output,
    }


def fake_training(
    request: dict[str, Any],
    *,
    job_name: str,
    config: LocalAwsConfig,
    progress: Callable[..., None],
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    """Goes through Downloading and Training, waits for its release, then uploads a model."""
    _note_start(config, job_name)
    progress("Downloading")
    progress("Training")
    while not _released(config, job_name):
        if should_stop():
            return {"status": "Stopped", "secondary_status": "Stopped"}
        time.sleep(0.05)
    progress("Uploading")
    return {
        "status": "Completed",
        "final_metrics": [{"MetricName": "validation:mAP", "Value": 0.25, "Timestamp": 1700000000.5}],
    }


FAKE_LABELING = Engine(run=f"{__name__}:fake_labeling", failure=f"{__name__}:FakeJobFailed")
FAKE_TRAINING = Engine(run=f"{__name__}:fake_training", failure=f"{__name__}:FakeJobFailed")


def labeling_request(name: str, mode: str = "quick") -> dict[str, Any]:
    """A complete CreateLabelingJob request, tagged with the fake engine's mode."""
    return {
        "LabelingJobName": name,
        "LabelAttributeName": "category",
        "InputConfig": {
            "DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://bucket/in/input.manifest"}},
            "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
        },
        "OutputConfig": {"S3OutputPath": "s3://bucket/out"},
        "RoleArn": "arn:aws:iam::123456789012:role/GroundTruth",
        "LabelCategoryConfigS3Uri": "s3://bucket/in/classes.json",
        "StoppingConditions": {"MaxPercentageOfInputDatasetLabeled": 100},
        "HumanTaskConfig": {
            "WorkteamArn": PUBLIC_CROWD,
            "UiConfig": {"UiTemplateS3Uri": "s3://bucket/in/template.liquid"},
            "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox",
            "TaskKeywords": ["Images", "bounding boxes"],
            "TaskTitle": "Boxes",
            "TaskDescription": "Draw a box around each bird",
            "NumberOfHumanWorkersPerDataObject": 3,
            "TaskTimeLimitInSeconds": 300,
            "TaskAvailabilityLifetimeInSeconds": 21600,
            "MaxConcurrentTaskCount": 200,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_LAMBDA},
            "PublicWorkforceTaskPrice": {
                "AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}
            },
        },
        "Tags": [{"Key": "mode", "Value": mode}],
    }


def release(config: LocalAwsConfig, name: str) -> None:
    """Let the waiting fake job ``name`` finish."""
    (config.data_dir / f"release-{name}").touch()


def starts(config: LocalAwsConfig, name: str) -> int:
    """How many times a fake engine started job ``name``."""
    path = config.data_dir / f"starts-{name}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for(store: Any, name: str, condition: Callable[[Any], bool]) -> Any:
    """The job from ``store`` once ``condition`` holds for it; AssertionError after TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        job = store.get(name)
        if condition(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not get there; it is {store.get(name)}")


def _note_start(config: LocalAwsConfig, job_name: str) -> None:
    with (config.data_dir / f"starts-{job_name}").open("a") as noted:
        noted.write("started\n")


def _released(config: LocalAwsConfig, job_name: str) -> bool:
    return (config.data_dir / f"release-{job_name}").exists()
