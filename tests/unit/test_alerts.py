"""notify_task_failure against moto's SNS, read back through an SQS queue subscribed to the topic."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from airflow.sdk import DAG

from ground_truth_pipeline.alerts.notifiers import notify_task_failure
from tests.sns_inbox import subscribe_queue

DAG_ID = "ground_truth_object_detection"
RUN_ID = "manual__2026-11-26T09:00:00+00:00"
LOG_URL = "http://localhost:8080/dags/ground_truth_object_detection/runs/manual/tasks/label?try_number=2"


def failure_context(params: dict[str, Any], task_id: str = "label.start_labeling_job") -> dict[str, Any]:
    """The parts of a task's failure-callback context that the alert reads."""
    ti = SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID, task_id=task_id, try_number=2, log_url=LOG_URL)
    return {
        "ti": ti,
        "run_id": RUN_ID,
        "params": params,
        "exception": ValueError("Labeling job gtod-bird-3f9c1a2b7d-label is Failed: {bad} manifest"),
    }


def test_publishes_the_failure_to_the_topic_in_the_params(inbox):
    notify_task_failure(failure_context({"alert_topic_arn": inbox.topic_arn}))

    [notification] = inbox.received()
    assert notification["Subject"] == f"Airflow task failed: {DAG_ID}.label.start_labeling_job"
    assert notification["Message"].splitlines() == [
        "An Airflow task failed.",
        f"DAG: {DAG_ID}",
        f"Run: {RUN_ID}",
        "Task: label.start_labeling_job",
        "Try: 2",
        "Error: ValueError: Labeling job gtod-bird-3f9c1a2b7d-label is Failed: {bad} manifest",
        f"Log: {LOG_URL}",
    ]


def test_falls_back_to_the_airflow_variable(inbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GROUND_TRUTH_ALERT_TOPIC_ARN", inbox.topic_arn)

    notify_task_failure(failure_context({}))

    assert len(inbox.received()) == 1


def test_sends_nothing_without_a_target_and_names_the_settings_that_would_set_one(inbox, caplog):
    with caplog.at_level(logging.INFO, logger="ground_truth_pipeline.alerts"):
        notify_task_failure(failure_context({"alert_topic_arn": ""}))

    assert inbox.received() == []
    [record] = [r for r in caplog.records if r.getMessage().startswith("No alert sent")]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert f"'Airflow task failed: {DAG_ID}.label.start_labeling_job'" in message
    assert "param 'alert_topic_arn'" in message
    assert "Variable 'ground_truth_alert_topic_arn'" in message
    assert "[ground_truth_object_detection] alert_emails" in message
    assert "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_EMAILS" in message


def test_publishes_through_the_aws_default_connection(alert_environment, monkeypatch):
    west = subscribe_queue("us-west-2")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "us-west-2"}})
    )

    notify_task_failure(failure_context({"alert_topic_arn": west.topic_arn}))

    assert len(west.received()) == 1


def test_a_long_subject_is_cut_to_the_sns_limit(inbox):
    notify_task_failure(failure_context({"alert_topic_arn": inbox.topic_arn}, task_id="x" * 150))

    [notification] = inbox.received()
    assert len(notification["Subject"]) == 100
    assert notification["Subject"].endswith("xxx...")


def test_an_alert_that_cannot_be_sent_is_logged_not_raised(inbox, caplog):
    missing_topic = inbox.topic_arn.replace("ground-truth-alerts", "no-such-topic")

    with caplog.at_level(logging.ERROR, logger="ground_truth_pipeline.alerts"):
        notify_task_failure(failure_context({"alert_topic_arn": missing_topic}))

    assert inbox.received() == []
    assert (
        f"Could not publish the alert 'Airflow task failed: {DAG_ID}.label.start_labeling_job' "
        f"to the SNS topic {missing_topic}" in caplog.text
    )
    assert "NotFound" in caplog.text


def test_a_context_without_a_task_instance_still_alerts(inbox):
    context = {
        "dag": DAG(dag_id=DAG_ID, schedule=None),
        "run_id": RUN_ID,
        "reason": "task_failure",
        "params": {"alert_topic_arn": inbox.topic_arn},
    }

    notify_task_failure(context)

    [notification] = inbox.received()
    assert notification["Subject"] == f"Airflow task failed: {DAG_ID}"
    assert "Task: unknown" in notification["Message"].splitlines()
    assert "Error: task_failure" in notification["Message"].splitlines()
