"""The whole DAG on the local stack for a private workteam, whose worker labels in the browser.

``airflow dags test`` runs in the background; its labeling task creates the job for the team and defers on
the job's status. Meanwhile a person (this test, in Debian's chromium) signs in to the worker portal, waits
for the job to show up, and boxes every image with the mouse. The run then trains, transforms, deploys,
invokes and tears down as it does for the public crowd.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccounts
from tests.conftest import ROOT
from tests.local_aws.airflow_ui import CHROMIUM
from tests.local_aws.portal_browser import Drawn, Worker
from tests.local_aws.test_dag_on_local_stack import BUCKET, DAG_ID, RUN_TIMEOUT_S, finished_state, run_conf

pytestmark = [pytest.mark.integration, pytest.mark.ui]

TEAM = "dag-labelers"
WORKER = "dag-labeler"
PASSWORD = "a long enough password"
IMAGES = 8
JOB_OFFERED_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def team(local_stack) -> dict:
    seeded = local_stack.cli("seed", "--images", "60")
    assert seeded.returncode == 0, seeded.stderr
    config = local_stack.config
    s3 = config.boto3_client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    sagemaker = config.boto3_client("sagemaker")
    sagemaker.create_workteam(
        WorkteamName=TEAM,
        Description="Labels the DAG's images in the worker portal",
        MemberDefinitions=[{"OidcMemberDefinition": {"Groups": [TEAM]}}],
    )
    WorkerAccounts(StateDb(config.state_db), config.region).add(WORKER, PASSWORD, TEAM)
    return sagemaker.describe_workteam(WorkteamName=TEAM)["Workteam"]


@pytest.fixture
def dag_run(local_stack, team, airflow_db) -> Iterator[subprocess.Popen[str]]:
    conf = run_conf(
        "Bird", n_images=IMAGES, workers_per_image=1, workteam_arn=team["WorkteamArn"], prefix="dag-private"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "--conf", json.dumps(conf)],
        cwd=ROOT,
        env=local_stack.client_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _centre_box(object_id: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A box a person might draw on any image: around its middle quarter."""
    width, height = size
    return (width / 4, height / 4, 3 * width / 4, 3 * height / 4)


def test_the_dag_waits_for_a_private_team_labeling_in_the_portal(local_stack, team, dag_run) -> None:
    drawn: Drawn = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        worker = Worker(WORKER, page, f"http://{team['SubDomain']}", local_stack.config.state_db)
        worker.sign_in(PASSWORD)
        worker.start_when_offered(JOB_OFFERED_TIMEOUT_S)
        labeled = worker.label_all_waiting(_centre_box, drawn)
        browser.close()
    output, _ = dag_run.communicate(timeout=RUN_TIMEOUT_S)

    assert sorted(labeled) == list(range(IMAGES))
    assert dag_run.returncode == 0, output[-6000:]
    assert finished_state(output) == "success", output[-6000:]
    sagemaker = local_stack.config.boto3_client("sagemaker")
    [job] = [
        summary
        for summary in sagemaker.list_labeling_jobs(NameContains="gtod-bird")["LabelingJobSummaryList"]
        if summary["WorkteamArn"] == team["WorkteamArn"]
    ]
    assert job["LabelingJobStatus"] == "Completed" and job["LabelCounters"]["HumanLabeled"] == IMAGES
    [training] = sagemaker.list_training_jobs(NameContains=job["LabelingJobName"].rsplit("-", 1)[0])[
        "TrainingJobSummaries"
    ]
    assert training["TrainingJobStatus"] == "Completed"
    assert sagemaker.list_endpoints(NameContains="gtod-bird")["Endpoints"] == []
