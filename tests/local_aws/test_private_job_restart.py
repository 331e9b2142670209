"""A private team's labeling job survives a restart of the whole stack with every answer already given.

The test runs a stack of its own (tmp data dir, free ports). A team with two worker accounts gets a 4-image
job through boto3, as a user makes one. Worker A signs in to the worker portal over HTTP (httpx, with the
portal's cookies and CSRF tokens, as a browser does), recognises each image by its size and boxes 2 of
them. The stack is then stopped with a clean ``down`` (every service ends on SIGTERM and is waited for,
SeaweedFS's slow stop included: the restart a user makes, rather than the kill of ``down --timeout``) and
started again with ``up``; the job runner resumes the job in a new attempt.

After the restart the job is still InProgress and its LabelCounters never show fewer than the 2 images
already labeled. A's session is in the state file, so A's cookie still works: A finds the task they held
and releases it. Worker B signs in and boxes the 2 images left. The job completes; its output manifest
holds exactly the boxes each worker submitted (one worker per object, so the consolidated boxes are the
submitted ones), its worker-response files name A for the first two images and B for the others, and the
state file shows that no image was handed to a second worker while someone still held or had answered it.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from ground_truth_pipeline.instructions import BOUNDING_BOX_ELEMENT_NAME, instructions_template
from local_aws.portal.forms import CSRF_FIELD, CSRF_HEADER
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccounts
from tests.local_aws.conftest import LocalStack, stack_config

pytestmark = pytest.mark.integration

BUCKET = "private-restart"
JOB = "private-restart-job"
TEAM = "restart-team"
PASSWORD = "correct horse battery"
LABEL_ATTRIBUTE = "category"
LABELS = ("Bird", "Nest")
# Each image has a size of its own: the worker tells which image a task shows from the image it loads.
IMAGE_SIZES = [(320, 240), (400, 300), (240, 320), (360, 200)]
REGION = "us-east-1"
PRE_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:PRE-BoundingBox"
ACS_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:ACS-BoundingBox"
TIMEOUT_S = 60
ENDED = frozenset({"Completed", "Failed", "Stopped"})

_CSRF_INPUT = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')
_META = re.compile(r'<meta name="([a-z-]+)" content="([^"]*)">')
_IMAGE_URL = re.compile(r'src="(/task-images/[^"]+)"')
_CONTINUE = re.compile(r'href="(/tasks/\d+)"[^>]*>Continue</a>')
_START_ENABLED = re.compile(r'<button type="submit" class="primary" aria-describedby="job-\d+">Start working')


def _image(object_id: int) -> bytes:
    size = IMAGE_SIZES[object_id]
    image = Image.new("RGB", size, (60 + 40 * object_id, 140, 110))
    ImageDraw.Draw(image).ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(60, 40, 20))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def _boxes(object_id: int) -> list[dict[str, Any]]:
    """What a worker draws on image ``object_id``: a bird and a nest, in places of that image alone."""
    n = object_id
    return [
        {"label": "Bird", "left": 10 + 7 * n, "top": 20 + 5 * n, "width": 50 + 3 * n, "height": 40 + 2 * n},
        {"label": "Nest", "left": 100 + n, "top": 90 + 4 * n, "width": 30 + n, "height": 25 + 6 * n},
    ]


@dataclass(frozen=True)
class TaskPage:
    url: str
    csrf_token: str
    submit_url: str
    image_size: tuple[int, int]

    @property
    def object_id(self) -> int:
        return IMAGE_SIZES.index(self.image_size)


class PortalBrowser:
    """One worker's browser on the portal over HTTP: its own cookies, the forms' CSRF tokens."""

    def __init__(self, portal: str, name: str) -> None:
        self.name = name
        self.client = httpx.Client(base_url=portal, follow_redirects=False, timeout=30, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def sign_in(self) -> None:
        form = self._expect(self.client.get("/sign-in"), 200)
        fields = {CSRF_FIELD: _field(form.text), "name": self.name, "password": PASSWORD}
        signed_in = self._expect(self.client.post("/sign-in", data=fields), 303)
        assert signed_in.headers["location"] == "/"

    def job_list(self) -> str:
        """The job list; a signed-out browser is sent to the sign-in page instead."""
        return self._expect(self.client.get("/"), 200).text

    def start_when_offered(self, job: str) -> TaskPage:
        """Reload the job list, as a person waiting for work does, until the job has tasks; start on it."""
        deadline = time.monotonic() + TIMEOUT_S
        while not _START_ENABLED.search(jobs := self.job_list()):
            assert time.monotonic() < deadline, f"{job} offered {self.name} no task:\n{jobs}"
            time.sleep(0.25)
        started = self._expect(self.client.post(f"/jobs/{job}/start", data={CSRF_FIELD: _field(jobs)}), 303)
        return self.open(started.headers["location"])

    def open(self, url: str) -> TaskPage:
        """The task page at ``url`` and the size of its image, loaded as the page loads it."""
        assert url.startswith("/tasks/"), f"{self.name} was sent to {url}, not to a task"
        html = self._expect(self.client.get(url), 200).text
        metas = dict(_META.findall(html))
        image_url = _IMAGE_URL.search(html)
        assert image_url is not None, f"the task page {url} shows no image"
        image = Image.open(io.BytesIO(self._expect(self.client.get(image_url[1]), 200).content))
        return TaskPage(url, metas["csrf-token"], metas["crowd-submit-url"], image.size)

    def submit(self, task: TaskPage, boxes: list[dict[str, Any]]) -> str:
        """Send the crowd form's answer with ``boxes``; the URL the portal sends the worker on to."""
        width, height = task.image_size
        answer = {
            BOUNDING_BOX_ELEMENT_NAME: {
                "boundingBoxes": boxes,
                "inputImageProperties": {"height": height, "width": width},
            }
        }
        headers = {"Content-Type": "application/json", CSRF_HEADER: task.csrf_token}
        submitted = self.client.post(task.submit_url, content=json.dumps(answer), headers=headers)
        return self._expect(submitted, 200).json()["next"]

    def release(self, task: TaskPage) -> None:
        released = self.client.post(f"{task.url}/release", data={CSRF_FIELD: task.csrf_token})
        assert self._expect(released, 303).headers["location"].startswith("/?notice=released")

    def _expect(self, response: httpx.Response, status: int) -> httpx.Response:
        request = response.request
        assert response.status_code == status, (
            f"{self.name}: {request.method} {request.url.path} answered {response.status_code}, not {status}:"
            f" {response.headers.get('location', '')} {response.text[:500]}"
        )
        return response


def _field(html: str) -> str:
    found = _CSRF_INPUT.search(html)
    assert found is not None, f"the page has no {CSRF_FIELD} field:\n{html}"
    return found[1]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    stack = LocalStack(stack_config(tmp_path / "stack"))
    stack.up()
    try:
        yield stack
    finally:
        stack.down(timeout_s=2)  # its data is thrown away: a kill spares SeaweedFS's slow clean stop


def _create_job(stack: LocalStack, team_arn: str) -> None:
    s3, config = stack.config.boto3_client("s3"), stack.config
    s3.create_bucket(Bucket=BUCKET)
    lines = []
    for object_id in range(len(IMAGE_SIZES)):
        s3.put_object(Bucket=BUCKET, Key=f"images/{object_id}.jpg", Body=_image(object_id))
        lines.append(json.dumps({"source-ref": f"s3://{BUCKET}/images/{object_id}.jpg"}))
    s3.put_object(Bucket=BUCKET, Key="input.manifest", Body="\n".join(lines).encode())
    categories = {"labels": [{"label": label} for label in LABELS]}
    s3.put_object(Bucket=BUCKET, Key="categories.json", Body=json.dumps(categories).encode())
    s3.put_object(Bucket=BUCKET, Key="template.liquid", Body=instructions_template("Bird", None).encode())
    config.boto3_client("sagemaker").create_labeling_job(
        LabelingJobName=JOB,
        LabelAttributeName=LABEL_ATTRIBUTE,
        InputConfig={"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{BUCKET}/input.manifest"}}},
        OutputConfig={"S3OutputPath": f"s3://{BUCKET}/output/"},
        RoleArn=f"arn:aws:iam::{config.account_id}:role/labeling",
        LabelCategoryConfigS3Uri=f"s3://{BUCKET}/categories.json",
        HumanTaskConfig={
            "WorkteamArn": team_arn,
            "UiConfig": {"UiTemplateS3Uri": f"s3://{BUCKET}/template.liquid"},
            "PreHumanTaskLambdaArn": PRE_LAMBDA,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_LAMBDA},
            "TaskTitle": "Box the birds and nests",
            "TaskDescription": "One tight box around every bird and every nest",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 300,
            "TaskAvailabilityLifetimeInSeconds": 3600,
        },
    )


class JobWatch:
    """DescribeLabelingJob, polled; every LabelCounters seen is kept, to check they never go back."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.human_labeled: list[int] = []

    def describe(self) -> dict[str, Any]:
        job = self.stack.config.boto3_client("sagemaker").describe_labeling_job(LabelingJobName=JOB)
        self.human_labeled.append(job["LabelCounters"]["HumanLabeled"])
        return job

    def until(self, done: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while not done(job := self.describe()):
            assert job["LabelingJobStatus"] not in ENDED, f"the job ended while waiting for {what}: {job}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {job}"
            time.sleep(0.25)
        return job


def _read(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _worker_responses(s3: Any) -> dict[int, dict[str, Any]]:
    """datasetObjectId → its worker-response document; one file per object."""
    folder = f"output/{JOB}/annotations/worker-response/"
    found: dict[int, dict[str, Any]] = {}
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=folder).get("Contents", []):
        iteration, object_id, _ = item["Key"].removeprefix(folder).split("/")
        assert iteration == "iteration-1" and int(object_id) not in found, item["Key"]
        found[int(object_id)] = json.loads(_read(s3, item["Key"]))
    return found


def _private_tasks(state_db: Path) -> list[tuple[int, str, str]]:
    """(object, worker, state) of each task the portal handed out, in the order it handed them out."""
    with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT object_id, worker_name, state FROM private_tasks WHERE job_key = ? ORDER BY id",
            (JOB.lower(),),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_a_private_job_resumed_after_a_restart_keeps_every_answer(stack: LocalStack) -> None:
    config = stack.config
    sagemaker = config.boto3_client("sagemaker")
    sagemaker.create_workteam(
        WorkteamName=TEAM,
        Description="the team of the restart test",
        MemberDefinitions=[{"OidcMemberDefinition": {"Groups": [TEAM]}}],
    )
    team = sagemaker.describe_workteam(WorkteamName=TEAM)["Workteam"]
    accounts = WorkerAccounts(StateDb(config.state_db), config.region)
    worker_ids = {name: accounts.add(name, PASSWORD, TEAM).worker_id for name in ("ann", "bob")}
    _create_job(stack, team["WorkteamArn"])
    portal = f"http://{team['SubDomain']}"
    watch = JobWatch(stack)
    submitted: dict[int, tuple[str, list[dict[str, Any]]]] = {}
    ann, bob = PortalBrowser(portal, "ann"), PortalBrowser(portal, "bob")
    try:
        # Ann boxes two images; the portal then hands her a third, which she still holds at the restart.
        ann.sign_in()
        task = ann.start_when_offered(JOB)
        for _ in range(2):
            submitted[task.object_id] = ("ann", _boxes(task.object_id))
            task = ann.open(ann.submit(task, _boxes(task.object_id)))
        held = task
        before = watch.until(lambda job: job["LabelCounters"]["HumanLabeled"] == 2, "2 images labeled")
        assert before["LabelingJobStatus"] == "InProgress"

        stack.down()
        stack.up()

        after_up = watch.describe()
        assert after_up["LabelingJobStatus"] == "InProgress", after_up.get("FailureReason")
        assert (after_up["LabelingJobArn"], after_up["CreationTime"]) == (
            before["LabelingJobArn"],
            before["CreationTime"],
        )
        assert after_up["LabelCounters"]["HumanLabeled"] >= 2

        # Ann's session outlived the restart: her job list offers the task she held; she gives it back.
        held_again = _CONTINUE.search(ann.job_list())
        assert held_again is not None and held_again[1] == held.url
        ann.release(ann.open(held.url))

        # Bob, signed in afresh, boxes what is left; the portal then has nothing more for him.
        bob.sign_in()
        task = bob.start_when_offered(JOB)
        for _ in range(2):
            submitted[task.object_id] = ("bob", _boxes(task.object_id))
            following = bob.submit(task, _boxes(task.object_id))
            if following.startswith("/tasks/"):
                task = bob.open(following)
        assert following.startswith("/?notice=done"), following
    finally:
        ann.close()
        bob.close()

    job = watch.until(lambda job: job["LabelingJobStatus"] in ENDED, "the job to end")
    assert job["LabelingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["LabelCounters"] == {
        "TotalLabeled": 4,
        "HumanLabeled": 4,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }
    seen = watch.human_labeled[watch.human_labeled.index(2) :]
    assert seen == sorted(seen) and min(seen) == 2, f"LabelCounters went back: {watch.human_labeled}"
    assert {object_id: worker for object_id, (worker, _) in submitted.items()} == {
        0: "ann",
        1: "ann",
        2: "bob",
        3: "bob",
    }

    s3 = config.boto3_client("s3")
    output = job["LabelingJobOutput"]["OutputDatasetS3Uri"].removeprefix(f"s3://{BUCKET}/")
    lines = [json.loads(line) for line in _read(s3, output).decode().splitlines()]
    assert [line["source-ref"] for line in lines] == [
        f"s3://{BUCKET}/images/{object_id}.jpg" for object_id in range(len(IMAGE_SIZES))
    ]
    for object_id, line in enumerate(lines):
        boxes = submitted[object_id][1]
        assert line[LABEL_ATTRIBUTE]["annotations"] == [
            {key: box[key] for key in ("left", "top", "width", "height")}
            | {"class_id": LABELS.index(box["label"])}
            for box in boxes
        ], object_id
        width, height = IMAGE_SIZES[object_id]
        assert line[LABEL_ATTRIBUTE]["image_size"] == [{"width": width, "height": height, "depth": 3}]
        assert line[f"{LABEL_ATTRIBUTE}-metadata"]["human-annotated"] == "yes"

    responses = _worker_responses(s3)
    assert sorted(responses) == list(range(len(IMAGE_SIZES)))
    for object_id, document in responses.items():
        worker, boxes = submitted[object_id]
        (answer,) = document["answers"]
        assert answer["workerId"] == worker_ids[worker], object_id
        assert answer["answerContent"][BOUNDING_BOX_ELEMENT_NAME]["boundingBoxes"] == boxes, object_id

    # Each image was answered once; the only other task is the one Ann gave back, which went to Bob.
    assert _private_tasks(config.state_db) == [
        (0, "ann", "submitted"),
        (1, "ann", "submitted"),
        (2, "ann", "released"),
        (2, "bob", "submitted"),
        (3, "bob", "submitted"),
    ]
