"""The DAG's run-failure alert: one alert naming the run and its failed tasks, published to moto's SNS.

The contexts are shaped like the ones Airflow 3.3's DAG processor builds for a DAG's ``on_failure_callback``;
tests/integration/test_run_alerts.py runs the real DAG processor.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from airflow.sdk import DAG

from ground_truth_pipeline.alerts.notifiers import RunFailureNotifier, notify_run_failure

DAG_ID = "ground_truth_object_detection"
RUN_ID = "scheduled__2026-11-25T00:00:00+00:00"
LOG_URL = "http://localhost:8080/dags/ground_truth_object_detection/runs/scheduled/tasks/train.train_model"
TASK_STATES = {
    "prepare.select_images": "success",
    "label.start_labeling_job": "failed",
    "label.wait_for_labeling_job": "upstream_failed",
    "train.train_model": "failed",
    "deploy.delete_endpoint": "success",
}


class RecordedTaskStates:
    """Stands in for the Task SDK's task-state lookup; remembers which run it was asked about."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.asked: list[tuple[str, str]] = []

    def __call__(self, dag_id: str, run_id: str) -> dict[str, str]:
        self.asked.append((dag_id, run_id))
        return self.states


def run_failure_context(params: dict[str, Any]) -> dict[str, Any]:
    """What the DAG processor passes when the run has a last failed task: its template context."""
    dag_run = SimpleNamespace(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        logical_date=datetime(2026, 11, 25, tzinfo=UTC),
        data_interval_start=datetime(2026, 11, 25, tzinfo=UTC),
        data_interval_end=datetime(2026, 11, 26, tzinfo=UTC),
    )
    ti = SimpleNamespace(
        dag_id=DAG_ID, run_id=RUN_ID, task_id="train.train_model", try_number=3, log_url=LOG_URL
    )
    return {
        "dag": DAG(dag_id=DAG_ID, schedule=None),
        "dag_run": dag_run,
        "run_id": RUN_ID,
        "ti": ti,
        "params": params,
        "reason": "task_failure",
    }


def test_one_alert_names_the_run_and_every_failed_task(inbox):
    task_states = RecordedTaskStates(TASK_STATES)

    RunFailureNotifier(task_states=task_states)(run_failure_context({"alert_topic_arn": inbox.topic_arn}))

    assert task_states.asked == [(DAG_ID, RUN_ID)]
    [notification] = inbox.received()
    assert notification["Subject"] == f"Airflow run failed: {DAG_ID} {RUN_ID}"
    assert notification["Message"].splitlines() == [
        "An Airflow DAG run failed.",
        f"DAG: {DAG_ID}",
        f"Run: {RUN_ID}",
        "Logical date: 2026-11-25T00:00:00+00:00",
        "Data interval: 2026-11-25T00:00:00+00:00 to 2026-11-26T00:00:00+00:00",
        "Reason: task_failure",
        "Failed tasks (2):",
        "- label.start_labeling_job",
        "- train.train_model, try 3",
        f"Log of the last failed task: {LOG_URL}",
    ]


def test_when_the_tasks_cannot_be_read_the_alert_names_the_last_failed_task_and_says_so(inbox, caplog):
    def unreachable(dag_id: str, run_id: str) -> dict[str, str]:
        raise ConnectionError("execution API unreachable")

    with caplog.at_level(logging.WARNING, logger="ground_truth_pipeline.alerts"):
        RunFailureNotifier(task_states=unreachable)(run_failure_context({"alert_topic_arn": inbox.topic_arn}))

    [notification] = inbox.received()
    lines = notification["Message"].splitlines()
    assert lines[-3:] == [
        "Failed tasks (the run's tasks could not be read; this is the last to fail):",
        "- train.train_model, try 3",
        f"Log of the last failed task: {LOG_URL}",
    ]
    assert f"Could not read the task states of run {RUN_ID} (ConnectionError: execution API unreachable)" in (
        caplog.text
    )


def test_without_a_supervisor_as_in_dag_test_the_alert_still_goes_out(inbox):
    """The default lookup asks the Task SDK's supervisor, which a plain process (and ``dag.test()``) lacks."""
    notify_run_failure(run_failure_context({"alert_topic_arn": inbox.topic_arn}))

    [notification] = inbox.received()
    assert "- train.train_model, try 3" in notification["Message"].splitlines()


def test_a_context_with_only_the_dag_and_run_id_names_the_run_and_its_failed_tasks(inbox, monkeypatch):
    """Airflow passes no task when it has none to name; the topic then comes from the Variable."""
    monkeypatch.setenv("AIRFLOW_VAR_GROUND_TRUTH_ALERT_TOPIC_ARN", inbox.topic_arn)
    context = {"dag": DAG(dag_id=DAG_ID, schedule=None), "run_id": RUN_ID, "reason": "timed_out"}

    RunFailureNotifier(task_states=RecordedTaskStates(TASK_STATES))(context)

    [notification] = inbox.received()
    assert notification["Message"].splitlines() == [
        "An Airflow DAG run failed.",
        f"DAG: {DAG_ID}",
        f"Run: {RUN_ID}",
        "Reason: timed_out",
        "Failed tasks (2):",
        "- label.start_labeling_job",
        "- train.train_model",
    ]


def test_a_run_without_a_target_logs_which_settings_would_set_one(inbox, caplog):
    with caplog.at_level(logging.WARNING, logger="ground_truth_pipeline.alerts"):
        RunFailureNotifier(task_states=RecordedTaskStates(TASK_STATES))(run_failure_context({}))

    assert inbox.received() == []
    assert f"No alert sent for 'Airflow run failed: {DAG_ID} {RUN_ID}'" in caplog.text
    assert "param 'alert_topic_arn' or Variable 'ground_truth_alert_topic_arn'" in caplog.text
    assert "[ground_truth_object_detection] alert_emails" in caplog.text


def test_an_alert_that_cannot_be_published_is_logged_not_raised(inbox, caplog):
    missing_topic = inbox.topic_arn.replace("ground-truth-alerts", "no-such-topic")

    with caplog.at_level(logging.ERROR, logger="ground_truth_pipeline.alerts"):
        RunFailureNotifier(task_states=RecordedTaskStates(TASK_STATES))(
            run_failure_context({"alert_topic_arn": missing_topic})
        )

    assert f"Could not publish the alert 'Airflow run failed: {DAG_ID} {RUN_ID}'" in caplog.text
    assert "NotFound" in caplog.text
