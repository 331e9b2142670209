"""The Airflow UI, checked as a person would, in a real browser (Debian's chromium, headless, via Playwright).

``airflow standalone`` runs against the session's local stack in its own AIRFLOW_HOME on a free port, with
the DAG scheduled ``@daily`` over dated partitions of arriving images, as a team would configure it. In the
browser: log in, find the DAG in the list, open its trigger form, see every param with its description in
its section, change the class and the tiny settings of ``test_dag_on_local_stack``, label Open Images
instead of a partition, trigger, and see the run succeed on its page. Then open the Backfill dialog, backfill
a class over two days, and see its runs succeed, each on its own day's partition. ``pytest -m ui`` selects
these; the screenshots are ``run.png`` and ``backfill.png`` in the tests' tmp dirs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from local_aws.synthetic_open_images import dataset_uris
from scripts.airflow_standalone import USERNAME, AirflowStandalone
from scripts.dated_partitions import fill_partitions, partition_prefix
from tests.local_aws.airflow_ui import CHROMIUM, AirflowUi
from tests.local_aws.scheduled_airflow import (
    DAG_ID,
    labeled_uris,
    scheduled_airflow,
    selection_of,
    wait_for_runs,
)
from tests.local_aws.test_dag_on_local_stack import ROLE_ARN, TINY_TRAINING

pytestmark = [pytest.mark.integration, pytest.mark.ui]

BUCKET = "airflow-ui-test"
PREFIX = "ui-test"
# A second class next to the default Bird: a top class with 17 of the 60 seeded images (Car, Taxi, Truck).
CLASS_NAME = "Vehicle"
FORM_VALUES: dict[str, str | int] = {
    "class_name": CLASS_NAME,
    "n_images": 12,
    "n_test_images": 2,
    "workers_per_image": 3,
    "bucket": BUCKET,
    "prefix": PREFIX,
    "role_arn": ROLE_ARN,
    "images_prefix": "",  # Open Images, not the configured partitions
    **dataset_uris().as_dag_params(),
}
SECTIONS = ["Images", "Labeling", "Training", "Deployment", "Alerts"]
BACKFILL_DAYS = ("2026-10-01", "2026-10-02")
BACKFILL_CLASS = "Bird"
RUN_TIMEOUT_S = 360
TROUBLE = {"failed", "up_for_retry", "upstream_failed"}


@pytest.fixture(scope="module")
def airflow(local_stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStandalone]:
    def fill(s3: Any) -> None:
        fill_partitions(s3, BUCKET, BACKFILL_DAYS, images_per_day=3)

    with scheduled_airflow(local_stack, tmp_path_factory.mktemp("airflow-home"), BUCKET, fill) as server:
        yield server


@pytest.fixture(scope="module")
def api(airflow: AirflowStandalone) -> Iterator[httpx.Client]:
    with airflow.api() as client:
        yield client


@pytest.fixture
def page() -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: as root, `make test` installs it; else: apt-get install chromium"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def wait_for_success(
    airflow: AirflowStandalone, api: httpx.Client, run_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and its task instances once it succeeded; fails at the first failed or retried task."""
    run_path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        run = api.get(run_path).json()
        instances = api.get(f"{run_path}/taskInstances").json()["task_instances"]
        troubled = [ti["task_id"] for ti in instances if ti["state"] in TROUBLE]
        if troubled or run["state"] == "failed":
            logs = "\n".join(
                f"--- {task} ---\n{airflow.task_log_tail(DAG_ID, run_id, task)}" for task in troubled
            )
            pytest.fail(f"run {run_id} is {run['state']}, tasks in trouble: {troubled}\n{logs}")
        if run["state"] == "success":
            return run, instances
        if time.monotonic() > deadline:
            states = {ti["task_id"]: ti["state"] for ti in instances}
            pytest.fail(f"run {run_id} still {run['state']} after {RUN_TIMEOUT_S} s: {states}")
        time.sleep(5)


def test_a_run_triggered_from_the_params_form_succeeds(airflow, api, page, local_stack, tmp_path):
    ui = AirflowUi(page, airflow.base_url)
    ui.log_in(USERNAME, airflow.password)
    ui.open_dag(DAG_ID)
    form = ui.open_trigger_form()

    params = api.get(f"/dags/{DAG_ID}/details").json()["params"]
    assert form.section_titles() == SECTIONS
    shown = form.descriptions()
    assert shown == {name: param["description"] for name, param in params.items()}
    assert len(shown) == len(params) == 27
    sections = {
        name: form.section_of(name) for name in ("images_prefix", "max_labeling_cost_usd", "alert_topic_arn")
    }
    assert sections == {
        "images_prefix": "Images",
        "max_labeling_cost_usd": "Labeling",
        "alert_topic_arn": "Alerts",
    }
    assert shown["class_name"].startswith("The class to label: an Open Images class (display name or MID)")
    assert shown["workers_per_image"] == "Workers who label each image (1 to 9)."
    assert shown["workteam_arn"].startswith("Private workteam ARN. Empty: the public crowd")
    assert shown["training_hyperparameters"].startswith("Hyperparameters of the built-in object-detection")
    expect(form.unpause_on_trigger).to_be_checked()
    expect(form.submit_button).to_be_enabled()  # the defaults make a valid form

    for name, value in FORM_VALUES.items():
        form.fill(name, value)
    form.fill_json("training_hyperparameters", TINY_TRAINING)
    run_id = form.submit()

    run, instances = wait_for_success(airflow, api, run_id)
    assert run["triggering_user_name"] == USERNAME
    assert run["conf"].pop("images_prefix") in ("", None)
    assert run["conf"] == {
        **{name: param["value"] for name, param in params.items() if name != "images_prefix"},
        **{name: value for name, value in FORM_VALUES.items() if name != "images_prefix"},
        "training_hyperparameters": TINY_TRAINING,
    }
    expect(ui.run_state()).to_have_text("Success", timeout=60_000)
    rows = ui.task_instance_rows()
    expect(rows).to_have_count(len(instances))
    expect(rows.filter(has=page.get_by_test_id("state-badge").filter(has_text="Success"))).to_have_count(
        len(instances)
    )
    page.reload()  # the grid's run bar too, for the screenshot
    expect(ui.run_state()).to_have_text("Success")
    page.screenshot(path=tmp_path / "run.png")

    s3 = local_stack.config.boto3_client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{CLASS_NAME.lower()}/")
    [metrics_key] = [
        item["Key"] for item in listed["Contents"] if item["Key"].endswith("/analysis/metrics.json")
    ]
    metrics = json.loads(s3.get_object(Bucket=BUCKET, Key=metrics_key)["Body"].read())
    assert (metrics["images"], metrics["failed_images"]) == (12, 0)
    sagemaker = local_stack.config.boto3_client("sagemaker")
    assert sagemaker.list_endpoints(NameContains=f"gtod-{CLASS_NAME.lower()}")["Endpoints"] == []


def test_a_backfill_for_a_class_from_the_backfill_dialog_labels_each_days_partition(
    airflow, api, page, local_stack, tmp_path
):
    ui = AirflowUi(page, airflow.base_url)
    ui.log_in(USERNAME, airflow.password)
    ui.open_dag(DAG_ID)
    form = ui.open_backfill_form()
    form.date_range(*BACKFILL_DAYS)
    form.max_active_runs(2)
    form.send_params()
    for name, value in {
        "class_name": BACKFILL_CLASS,
        "n_images": 2,
        "n_test_images": 1,
        "workers_per_image": 3,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "role_arn": ROLE_ARN,
    }.items():
        form.fill(name, value)
    form.fill_json("training_hyperparameters", TINY_TRAINING)
    page.screenshot(path=tmp_path / "backfill.png", full_page=True)
    form.submit_backfill()

    runs = wait_for_runs(api, BACKFILL_CLASS, BACKFILL_DAYS, RUN_TIMEOUT_S)
    for day in BACKFILL_DAYS:
        run, _ = wait_for_success(airflow, api, runs[day]["dag_run_id"])
        s3 = local_stack.config.boto3_client("s3")
        labeled = labeled_uris(selection_of(s3, BUCKET, PREFIX, BACKFILL_CLASS, run["dag_run_id"]))
        assert len(labeled) == 2
        assert all(uri.startswith(f"s3://{BUCKET}/{partition_prefix(day)}") for uri in labeled), labeled
