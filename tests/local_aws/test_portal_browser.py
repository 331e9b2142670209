"""People of a private workteam label a job in the worker portal, in Debian's chromium, on a running stack.

The stack is the session's (S3, SageMaker, the portal, as ``python -m local_aws up`` starts them). The team
and its job are made through boto3 as a user makes them; the worker accounts through the accounts store,
as ``python -m local_aws workers add`` does. Three workers of the team sign in and draw boxes with the
mouse; one of them lets a task time out (TaskTimeLimitInSeconds is 30, the least AWS allows), and the image
goes to someone else. A worker of another team sees nothing of the job. Forged requests are refused. The
job then completes, and its output manifest holds the boxes that were drawn.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, sync_playwright

from ground_truth_pipeline.instructions import instructions_template
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccounts
from tests.local_aws.airflow_ui import CHROMIUM
from tests.local_aws.portal_browser import Worker

pytestmark = [pytest.mark.integration, pytest.mark.ui]

BUCKET = "portal-browser"
JOB = "portal-browser-job"
TEAM, OTHER_TEAM = "browser-team", "browser-other-team"
WORKERS = ("ann", "bob", "cat")
OUTSIDER = "dan"
PASSWORD = "correct horse battery"
IMAGES = 6
IMAGE_SIZES = [(640, 480), (800, 600), (480, 640), (1024, 768), (640, 360), (2000, 1500)]
TIME_LIMIT_S = 30
REGION = "us-east-1"
PRE_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:PRE-BoundingBox"
ACS_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:ACS-BoundingBox"
JOB_TIMEOUT_S = 120


def _image(index: int, size: tuple[int, int]) -> bytes:
    image = Image.new("RGB", size, (90 + 20 * index, 140, 110))
    ImageDraw.Draw(image).ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(60, 40, 20))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def _target(object_id: int, size: tuple[int, int] | None = None) -> tuple[float, float, float, float]:
    """Where every worker draws on image ``object_id``: its ellipse's box, in image pixels."""
    width, height = IMAGE_SIZES[object_id]
    return (width / 4, height / 4, width / 2, height / 2)


@pytest.fixture(scope="module")
def private_job(local_stack) -> Iterator[dict[str, Any]]:
    """The teams, their workers and a 6-image job for ``TEAM``, created as a user would."""
    config = local_stack.config
    s3 = config.boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    lines = []
    for index, size in enumerate(IMAGE_SIZES):
        s3.put_object(Bucket=BUCKET, Key=f"images/{index}.jpg", Body=_image(index, size))
        lines.append(json.dumps({"source-ref": f"s3://{BUCKET}/images/{index}.jpg"}))
    s3.put_object(Bucket=BUCKET, Key="input.manifest", Body="\n".join(lines).encode())
    labels = {"labels": [{"label": "Bird"}, {"label": "Nest"}]}
    s3.put_object(Bucket=BUCKET, Key="categories.json", Body=json.dumps(labels).encode())
    s3.put_object(Bucket=BUCKET, Key="template.liquid", Body=instructions_template("Bird", None).encode())

    sagemaker = config.boto3_client("sagemaker")
    teams = {}
    for team in (TEAM, OTHER_TEAM):
        sagemaker.create_workteam(
            WorkteamName=team,
            Description=f"{team} of the browser test",
            MemberDefinitions=[{"OidcMemberDefinition": {"Groups": [team]}}],
        )
        teams[team] = sagemaker.describe_workteam(WorkteamName=team)["Workteam"]
    accounts = WorkerAccounts(StateDb(config.state_db), config.region)
    for worker in WORKERS:
        accounts.add(worker, PASSWORD, TEAM)
    accounts.add(OUTSIDER, PASSWORD, OTHER_TEAM)

    sagemaker.create_labeling_job(
        LabelingJobName=JOB,
        LabelAttributeName="category",
        InputConfig={"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{BUCKET}/input.manifest"}}},
        OutputConfig={"S3OutputPath": f"s3://{BUCKET}/output/"},
        RoleArn=f"arn:aws:iam::{config.account_id}:role/labeling",
        LabelCategoryConfigS3Uri=f"s3://{BUCKET}/categories.json",
        HumanTaskConfig={
            "WorkteamArn": teams[TEAM]["WorkteamArn"],
            "UiConfig": {"UiTemplateS3Uri": f"s3://{BUCKET}/template.liquid"},
            "PreHumanTaskLambdaArn": PRE_LAMBDA,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_LAMBDA},
            "TaskTitle": "Box the birds",
            "TaskDescription": "Draw one tight box around every bird",
            "NumberOfHumanWorkersPerDataObject": 2,
            "TaskTimeLimitInSeconds": TIME_LIMIT_S,
            "TaskAvailabilityLifetimeInSeconds": 3600,
            "MaxConcurrentTaskCount": 3,
        },
    )
    _wait_until(lambda: _job(sagemaker)["LabelingJobStatus"] == "InProgress", "the job to start")
    yield {"portal": f"http://{teams[TEAM]['SubDomain']}", "sagemaker": sagemaker, "s3": s3, "config": config}


def _job(sagemaker: Any) -> dict[str, Any]:
    return sagemaker.describe_labeling_job(LabelingJobName=JOB)


def _wait_until(condition: Any, what: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


def _worker(browser: Browser, name: str, job: dict[str, Any]) -> Worker:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    return Worker(name, context.new_page(), job["portal"], job["config"].state_db)


def test_a_team_labels_a_private_job_in_the_browser(browser, private_job, tmp_path) -> None:
    ann, bob, cat, dan = (_worker(browser, name, private_job) for name in (*WORKERS, OUTSIDER))
    drawn: dict[int, list[dict[str, Any]]] = {}
    for worker in (cat, ann, bob, dan):
        worker.sign_in(PASSWORD)

    # Cat takes the first image and leaves it: it stays out for TaskTimeLimitInSeconds.
    cat.start()
    abandoned = cat.object_id()
    cat_started = time.monotonic()

    # A worker of another team sees nothing of the job, not even by its task's address.
    dan.page.goto(f"{private_job['portal']}/")
    assert dan.page.get_by_text("No labeling jobs are open").is_visible()
    assert dan.page.get_by_role("button", name="Start working").count() == 0
    ann.start()
    ann.page.screenshot(path=tmp_path / "task-page.png")
    assert dan.page.goto(f"{private_job['portal']}/tasks/{ann.task_id}").status == 404

    # Forged requests: no CSRF token, someone else's task, a box outside the image.
    submit_url = f"{private_job['portal']}/tasks/{ann.task_id}/submit"
    width, height = IMAGE_SIZES[ann.object_id()]
    inside = {"height": 10, "label": "Bird", "left": 1, "top": 1, "width": 10}
    outside = {**inside, "left": width - 5}

    def answer(box: dict[str, Any]) -> str:
        props = {"height": height, "width": width}
        return json.dumps({"boundingBox": {"boundingBoxes": [box], "inputImageProperties": props}})

    json_headers = {"Content-Type": "application/json"}
    no_token = ann.page.request.post(submit_url, data=answer(inside), headers=json_headers)
    assert no_token.status == 403
    dan.page.goto(f"{private_job['portal']}/")
    dan_token = dan.page.locator('input[name="csrf_token"]').first.get_attribute("value")
    not_theirs = dan.page.request.post(
        submit_url, data=answer(inside), headers={**json_headers, "X-CSRF-Token": dan_token}
    )
    assert not_theirs.status in (404, 409) and "no such task" in not_theirs.text().lower()
    off_image = ann.page.request.post(
        submit_url, data=answer(outside), headers={**json_headers, "X-CSRF-Token": ann.csrf_token()}
    )
    assert off_image.status == 400 and "right edge" in off_image.json()["error"]

    # Ann and Bob label everything they are offered, with the mouse.
    assert ann.object_id() == abandoned  # already out with Cat, so it goes to a second worker first
    ann_done = ann.label_all_waiting(_target, drawn)
    bob.start()
    bob_done = bob.label_all_waiting(_target, drawn)
    assert sorted(ann_done) == list(range(IMAGES))
    assert abandoned not in bob_done and len(bob_done) == IMAGES - 1

    # Cat's task times out; the image is offered to Bob, and Cat's late answer is refused.
    time.sleep(max(0.0, TIME_LIMIT_S + 1 - (time.monotonic() - cat_started)))
    cat.draw(*_target(abandoned))
    cat.page.get_by_role("button", name="Submit").click()
    assert "time limit ran out" in cat.page.get_by_role("alert").inner_text()
    bob.start()
    assert bob.object_id() == abandoned
    bob.label_all_waiting(_target, drawn)

    sagemaker = private_job["sagemaker"]
    _wait_until(lambda: _job(sagemaker)["LabelingJobStatus"] == "Completed", "the job to complete")
    described = _job(sagemaker)
    assert described["LabelCounters"]["HumanLabeled"] == IMAGES
    output = described["LabelingJobOutput"]["OutputDatasetS3Uri"].removeprefix(f"s3://{BUCKET}/")
    body = private_job["s3"].get_object(Bucket=BUCKET, Key=output)["Body"].read().decode()
    for object_id, line in enumerate(body.splitlines()):
        (box,) = json.loads(line)["category"]["annotations"]
        boxes = drawn[object_id]
        assert len(boxes) == 2
        for edge in ("left", "top", "width", "height"):
            assert abs(box[edge] - sum(b[edge] for b in boxes) / 2) <= 1, (object_id, edge, box, boxes)
        assert json.loads(line)["category-metadata"]["human-annotated"] == "yes"
