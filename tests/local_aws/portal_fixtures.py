"""A worker portal over a state file and a moto S3, with two teams, three workers and one open job.

The job's rows are made as the labeling engine makes them (``TaskQueue.open_job`` and ``offer``), over a
labeling job InProgress; the accounts are real ones (argon2id hashes), so signing in is tested for real.
The clock is a ``Clock`` the tests move: throttling, deadlines and image URLs expire without sleeping.
"""

from __future__ import annotations

import io
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.testclient import TestClient

from ground_truth_pipeline.instructions import instructions_template
from local_aws.config import LocalAwsConfig
from local_aws.portal.app import create_app
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccounts
from local_aws.workforce.task_queue import ObjectToLabel, PrivateJob, TaskQueue
from tests.local_aws.private_team_fixtures import start_job, team_arn

PASSWORD = "correct horse battery"
JOB = "bird-boxes"
TEAM = "birders"
OTHER_TEAM = "gulls"
WIDTH, HEIGHT = 120, 80
HOSTILE_LABEL = 'Say "hi"</script><script>alert(1)</script>'
LABELS = ("Bird", HOSTILE_LABEL)
IMAGES = 3
TASK_TIME_LIMIT_S = 600
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Clock:
    """The portal's time, moved by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))  # whole seconds, as image URLs count them

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def add_workteam(db: StateDb, config: LocalAwsConfig, team: str) -> str:
    at = time.time()
    arn = team_arn(config, team)
    with db.transaction() as connection:
        connection.execute(
            "INSERT INTO workteams VALUES (?, ?, ?, 'default', 'test team', '[]', NULL, NULL, ?, ?)",
            (team.lower(), team, arn, at, at),
        )
    return arn


@dataclass
class Portal:
    config: LocalAwsConfig
    db: StateDb
    clock: Clock
    bucket: str
    s3: Any

    def client(self) -> TestClient:
        """A browser of its own (its own cookies) on one app over the shared state."""
        return TestClient(self.app, follow_redirects=False)

    def __post_init__(self) -> None:
        self.app = create_app(self.config, clock=self.clock)

    def image_uri(self, number: int) -> str:
        return f"s3://{self.bucket}/images/{number}.png"


def make_portal(tmp_path: Path, s3_port: int) -> Portal:
    """Workers alice and bob in team birders, carol in team gulls; job bird-boxes for birders, 3 images."""
    config = LocalAwsConfig(data_dir=tmp_path, s3_port=s3_port)
    s3 = config.boto3_client("s3")
    bucket = f"portal-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    template_uri = f"s3://{bucket}/instructions.template"
    s3.put_object(Bucket=bucket, Key="instructions.template", Body=instructions_template("Bird", None))
    for number in range(IMAGES):
        s3.put_object(
            Bucket=bucket, Key=f"images/{number}.png", Body=png(WIDTH, HEIGHT), ContentType="image/png"
        )
    db = StateDb(config.state_db)
    arn = add_workteam(db, config, TEAM)
    add_workteam(db, config, OTHER_TEAM)
    accounts = WorkerAccounts(db, config.region)
    accounts.add("alice", PASSWORD, TEAM)
    accounts.add("bob", PASSWORD, TEAM)
    accounts.add("carol", PASSWORD, OTHER_TEAM)
    start_job(db, config, {"LabelingJobName": JOB})
    portal = Portal(config, db, Clock(), bucket, s3)
    queue = TaskQueue(db)
    queue.open_job(
        PrivateJob(
            job_name=JOB,
            workteam_arn=arn,
            title=f"Bird boxes {HOSTILE_LABEL}",
            description="Draw a box around each bird",
            workers_per_object=1,
            max_concurrent_tasks=10,
            task_time_limit_s=TASK_TIME_LIMIT_S,
            labels=LABELS,
            template_uri=template_uri,
        )
    )
    objects = [ObjectToLabel(n, 0, portal.image_uri(n), WIDTH, HEIGHT) for n in range(IMAGES)]
    queue.offer(JOB, objects, lifetime_s=3600, now=portal.clock())
    return portal


def csrf_field(html: str) -> str:
    found = _CSRF_FIELD.search(html)
    assert found is not None, html
    return found.group(1)


def csrf_meta(html: str) -> str:
    found = _CSRF_META.search(html)
    assert found is not None, html
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    """Fill in and send the sign-in form as a browser does; the POST's response."""
    form = client.get("/sign-in")
    return client.post(
        "/sign-in", data={"csrf_token": csrf_field(form.text), "name": name, "password": password}
    )


def signed_in(portal: Portal, name: str) -> tuple[TestClient, str]:
    """A client signed in as ``name`` and its session's CSRF token (from the job list)."""
    client = portal.client()
    assert sign_in(client, name).status_code == 303
    return client, csrf_field(client.get("/").text)


def box_answer(boxes: list[dict[str, Any]], width: int = WIDTH, height: int = HEIGHT) -> dict[str, Any]:
    return {
        "boundingBox": {"boundingBoxes": boxes, "inputImageProperties": {"height": height, "width": width}}
    }


def box(
    label: str = "Bird", left: int = 10, top: int = 10, width: int = 30, height: int = 20
) -> dict[str, Any]:
    return {"height": height, "label": label, "left": left, "top": top, "width": width}
