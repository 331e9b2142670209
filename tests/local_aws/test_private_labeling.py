"""A labeling job for a private workteam: the engine offers the images, people answer in the queue.

The engine runs in a thread against an S3 served by moto, as a worker process runs it; the people are this
test, taking and submitting tasks through the same queue the worker portal uses.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from ground_truth_pipeline.instructions import instructions_template
from local_aws.config import LocalAwsConfig
from local_aws.groundtruth import check_labeling_job_request, run_labeling_job
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.task_queue import TaskQueue
from tests.local_aws.private_team_fixtures import add_team, answer, start_job

REGION = "us-east-1"
BUCKET = "private-labeling"
PRE_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:PRE-BoundingBox"
ACS_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:ACS-BoundingBox"
IMAGES = 6
WIDTH, HEIGHT = 320, 240
WORKERS = ("ann", "bob", "cat")
ENGINE_TIMEOUT_S = 30

pytestmark = pytest.mark.calendar


@pytest.fixture
def config(tmp_path, moto_s3_port) -> LocalAwsConfig:
    return LocalAwsConfig(data_dir=tmp_path / "local-aws", s3_port=moto_s3_port, region=REGION)


@pytest.fixture
def s3(config) -> Any:
    client = config.boto3_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def db(config) -> StateDb:
    return StateDb(config.state_db)


def _image(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), (40 * index, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _request(s3: Any, config: LocalAwsConfig, team_arn: str, name: str, **human: Any) -> dict[str, Any]:
    prefix = f"s3://{BUCKET}/{name}"
    lines = []
    for index in range(IMAGES):
        s3.put_object(Bucket=BUCKET, Key=f"{name}/images/{index}.jpg", Body=_image(index))
        lines.append(json.dumps({"source-ref": f"{prefix}/images/{index}.jpg"}))
    s3.put_object(Bucket=BUCKET, Key=f"{name}/input.manifest", Body="\n".join(lines).encode())
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{name}/categories.json",
        Body=json.dumps({"labels": [{"label": "Bird"}, {"label": "Nest"}]}).encode(),
    )
    s3.put_object(
        Bucket=BUCKET, Key=f"{name}/template.liquid", Body=instructions_template("Bird", None).encode()
    )
    return {
        "LabelingJobName": name,
        "LabelAttributeName": "category",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"{prefix}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"{prefix}/output/"},
        "RoleArn": f"arn:aws:iam::{config.account_id}:role/labeling",
        "LabelCategoryConfigS3Uri": f"{prefix}/categories.json",
        "HumanTaskConfig": {
            "WorkteamArn": team_arn,
            "UiConfig": {"UiTemplateS3Uri": f"{prefix}/template.liquid"},
            "PreHumanTaskLambdaArn": PRE_LAMBDA,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_LAMBDA},
            "TaskTitle": "Box the birds",
            "TaskDescription": "One box per bird",
            "NumberOfHumanWorkersPerDataObject": 2,
            "TaskTimeLimitInSeconds": 300,
            "MaxConcurrentTaskCount": 4,
            **human,
        },
    }


class EngineThread(threading.Thread):
    """``run_labeling_job`` in a thread, recording its reports, its result or its error."""

    def __init__(
        self,
        request: dict[str, Any],
        config: LocalAwsConfig,
        report: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.request, self.config = request, config
        self.reports: list[dict[str, int]] = []
        self.stop_requested = threading.Event()
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._on_report = report

    def run(self) -> None:
        def report(status: str, counters: dict[str, int]) -> None:
            self.reports.append(dict(counters))
            if self._on_report is not None:
                self._on_report(counters)

        try:
            self.result = run_labeling_job(
                self.request,
                job_name=self.request["LabelingJobName"],
                job_arn="arn:test",
                config=self.config,
                report=report,
                should_stop=self.stop_requested.is_set,
            )
        except BaseException as error:
            self.error = error

    def finish(self) -> dict[str, Any]:
        self.join(ENGINE_TIMEOUT_S)
        assert not self.is_alive(), "the engine did not finish"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + ENGINE_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _output_lines(s3: Any, job: str) -> list[dict[str, Any]]:
    key = f"{job}/output/{job}/manifests/output/output.manifest"
    return [json.loads(line) for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines()]


def _box_of(object_id: int, worker: str) -> tuple[str, int, int, int, int]:
    """What ``worker`` draws on image ``object_id``: a box a few pixels off the others'."""
    shift = WORKERS.index(worker) * 2
    return ("Bird", 20 + 10 * object_id + shift, 30 + shift, 100, 80)


def _label(
    queue: TaskQueue,
    job: str,
    workers: tuple[str, ...],
    until: Callable[[], bool],
    pace_s: float = 0.0,
    limit: int | None = None,
) -> list[tuple[str, int]]:
    """People take and submit tasks until ``until()`` or ``limit`` answers, a round every ``pace_s``; what
    each submitted, in order."""
    done: list[tuple[str, int]] = []
    deadline = time.monotonic() + ENGINE_TIMEOUT_S
    while not until() and len(done) != limit and time.monotonic() < deadline:
        worked = False
        for worker in workers:
            task = queue.next_task(worker, job, time.time())
            if task is not None and len(done) != limit:
                queue.submit(
                    worker, task.id, answer([_box_of(task.object_id, worker)], WIDTH, HEIGHT), time.time()
                )
                done.append((worker, task.object_id))
                worked = True
        time.sleep(pace_s if worked else 0.05)
    return done


def test_a_private_team_labels_the_job_and_the_output_holds_their_boxes(s3, config, db) -> None:
    team = add_team(db, config, "birders", list(WORKERS))
    request = _request(s3, config, team, "private-job")
    check_labeling_job_request(request, config)
    start_job(db, config, request)
    engine = EngineThread(request, config)
    engine.start()
    done = _label(TaskQueue(db), "private-job", WORKERS, lambda: not engine.is_alive(), pace_s=0.6)
    result = engine.finish()

    assert result["status"] == "Completed"
    assert result["counters"] == {
        "TotalLabeled": IMAGES,
        "HumanLabeled": IMAGES,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }
    assert len(done) == 2 * IMAGES
    # Progress showed while people worked, one object at a time, never going back.
    labeled = [report["HumanLabeled"] for report in engine.reports]
    assert labeled == sorted(labeled) and labeled[-1] == IMAGES
    assert len(set(labeled)) > 2

    lines = _output_lines(s3, "private-job")
    by_worker: dict[int, list[str]] = {}
    for worker, object_id in done:
        by_worker.setdefault(object_id, []).append(worker)
    for object_id, line in enumerate(lines):
        (box,) = line["category"]["annotations"]
        drawn = [_box_of(object_id, worker) for worker in by_worker[object_id]]
        # Two workers' boxes are averaged: the consolidated box lies between them, to a pixel.
        expected_left = sum(d[1] for d in drawn) / 2
        assert abs(box["left"] - expected_left) <= 0.5 and box["width"] == 100 and box["height"] == 80
        assert line["category-metadata"]["human-annotated"] == "yes"

    response_keys = [
        item["Key"]
        for item in s3.list_objects_v2(
            Bucket=BUCKET, Prefix="private-job/output/private-job/annotations/worker-response/"
        )["Contents"]
    ]
    assert len(response_keys) == IMAGES
    first = json.loads(s3.get_object(Bucket=BUCKET, Key=sorted(response_keys)[0])["Body"].read())
    worker_ids = {answer["workerId"] for answer in first["answers"]}
    assert worker_ids <= {f"private.{REGION}.{worker}id" for worker in WORKERS} and len(worker_ids) == 2
    entry = first["answers"][0]
    assert entry["answerContent"]["boundingBox"]["inputImageProperties"] == {"width": WIDTH, "height": HEIGHT}
    assert entry["workerMetadata"]["identityData"]["identityProviderType"] == "Cognito"
    assert entry["timeSpentInSeconds"] >= 0


def test_images_not_finished_within_their_lifetime_fail_one_by_one(s3, config, db) -> None:
    team = add_team(db, config, "slow", ["ann"])
    request = _request(s3, config, team, "lifetime-job", TaskAvailabilityLifetimeInSeconds=2)
    start_job(db, config, request)
    engine = EngineThread(request, config)
    engine.start()
    queue = TaskQueue(db)
    # One worker answers two images; each needs two workers.
    _label(queue, "lifetime-job", ("ann",), lambda: False, limit=2)
    result = engine.finish()
    assert result["status"] == "Completed"
    assert result["counters"]["FailedNonRetryableError"] == IMAGES
    lines = _output_lines(s3, "lifetime-job")
    reasons = [line["category-metadata"]["failure-reason"] for line in lines]
    assert "1 of the 2 workers it needs submitted an answer" in reasons[0]
    assert "0 of the 2 workers" in reasons[-1]
    assert all("TaskAvailabilityLifetimeInSeconds, 2 s" in reason for reason in reasons)


def test_a_stop_keeps_what_was_labeled_and_withdraws_the_rest(s3, config, db) -> None:
    team = add_team(db, config, "stoppers", list(WORKERS))
    request = _request(s3, config, team, "stopped-job", NumberOfHumanWorkersPerDataObject=1)
    start_job(db, config, request)
    engine = EngineThread(request, config)
    engine.start()
    queue = TaskQueue(db)
    _label(queue, "stopped-job", ("ann",), lambda: False, limit=2)
    _wait_for(lambda: engine.reports[-1]["HumanLabeled"] == 2)
    held = queue.next_task("bob", "stopped-job", time.time())
    assert held is not None
    engine.stop_requested.set()
    result = engine.finish()
    assert result["status"] == "Stopped"
    assert result["counters"]["HumanLabeled"] >= 2
    assert result["counters"]["Unlabeled"] == IMAGES - result["counters"]["HumanLabeled"]
    assert queue.object_states("stopped-job", [held.object_id])[held.object_id][0] == "withdrawn"


def test_answers_survive_an_interrupted_engine_and_the_next_attempt_carries_on(s3, config, db) -> None:
    team = add_team(db, config, "restarters", list(WORKERS))
    request = _request(s3, config, team, "resumed-job", NumberOfHumanWorkersPerDataObject=1)
    start_job(db, config, request)

    def crash_after_three(counters: dict[str, int]) -> None:
        if counters["HumanLabeled"] >= 3:
            raise RuntimeError("the service died")

    first = EngineThread(request, config, crash_after_three)
    first.start()
    queue = TaskQueue(db)
    before = _label(queue, "resumed-job", ("ann",), lambda: not first.is_alive())
    first.join(ENGINE_TIMEOUT_S)
    assert isinstance(first.error, RuntimeError)
    assert len(before) >= 3

    second = EngineThread(request, config)
    second.start()
    after = _label(queue, "resumed-job", ("bob",), lambda: not second.is_alive())
    result = second.finish()
    assert result["status"] == "Completed"
    assert result["counters"]["HumanLabeled"] == IMAGES
    assert len(before) + len(after) == IMAGES  # nothing labeled twice, nothing lost
    lines = _output_lines(s3, "resumed-job")
    for worker, object_id in before + after:
        assert lines[object_id]["category"]["annotations"][0]["left"] == _box_of(object_id, worker)[1]


def test_a_job_for_a_team_the_stack_does_not_have_is_refused_by_name(s3, config, db) -> None:
    unknown = f"arn:aws:sagemaker:{REGION}:{config.account_id}:workteam/private-crowd/nobody"
    request = _request(s3, config, unknown, "unknown-team-job")
    with pytest.raises(ValueError, match=r"unknown workteam .*nobody.*CreateWorkteam"):
        check_labeling_job_request(request, config)
