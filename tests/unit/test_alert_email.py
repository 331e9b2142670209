"""E-mail alerts through the SMTP provider's notifier, to a real SMTP server (aiosmtpd) that wants a login."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.triggers.callback import CallbackTrigger

from ground_truth_pipeline.alerts.deadline import run_deadline_alert
from ground_truth_pipeline.alerts.notifiers import RunFailureNotifier, notify_task_failure
from tests.smtp_inbox import FROM_EMAIL, LOGIN, PASSWORD

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

DAG_ID = "ground_truth_object_detection"
RUN_ID = "manual__2026-11-26T09:00:00+00:00"
RECIPIENTS = ["ops@example.com", "ml-team@example.com"]


def task_failure_context(params: dict[str, Any]) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id=DAG_ID, run_id=RUN_ID, task_id="label.start_labeling_job", try_number=2, log_url="http://x/log"
    )
    return {
        "ti": ti,
        "run_id": RUN_ID,
        "params": params,
        "exception": ValueError("Labeling job failed: {bad} <manifest> & more"),
    }


def run_failure_context(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "dag": DAG(dag_id=DAG_ID, schedule=None),
        "run_id": RUN_ID,
        "reason": "task_failure",
        "params": params,
    }


def failed_tasks(dag_id: str, run_id: str) -> dict[str, str]:
    return {"label.start_labeling_job": "failed", "train.train_model": "success"}


def test_a_task_failure_is_e_mailed_to_every_recipient_with_the_connections_login(mailbox):
    notify_task_failure(task_failure_context({}))

    [mail] = mailbox.received
    assert mail.recipients == RECIPIENTS
    assert mail.login == LOGIN
    assert mail.message["From"] == FROM_EMAIL
    assert mail.subject == f"Airflow task failed: {DAG_ID}.label.start_labeling_job"
    assert mail.text.splitlines() == [
        "An Airflow task failed.",
        f"DAG: {DAG_ID}",
        f"Run: {RUN_ID}",
        "Task: label.start_labeling_job",
        "Try: 2",
        "Error: ValueError: Labeling job failed: {bad} <manifest> & more",
        "Log: http://x/log",
    ]


def test_a_run_failure_goes_to_the_topic_and_by_e_mail(mailbox, inbox):
    RunFailureNotifier(task_states=failed_tasks)(run_failure_context({"alert_topic_arn": inbox.topic_arn}))

    [mail] = mailbox.received
    [notification] = inbox.received()
    assert mail.subject == notification["Subject"] == f"Airflow run failed: {DAG_ID} {RUN_ID}"
    assert mail.text == notification["Message"]
    assert "- label.start_labeling_job" in mail.text.splitlines()


def test_a_missed_deadline_is_e_mailed(mailbox):
    callback = run_deadline_alert("72").callback
    context = {
        "dag_run": {"dag_run_id": RUN_ID, "dag_id": DAG_ID, "state": "running", "conf": {}},
        "deadline": {"deadline_time": "2026-11-29T09:00:05+00:00"},
    }
    trigger = CallbackTrigger(
        callback_path=callback.path, callback_kwargs={**callback.kwargs, "context": context}
    )

    async def run() -> list[Any]:
        return [event async for event in trigger.run()]

    asyncio.run(run())

    [mail] = mailbox.received
    assert mail.subject == f"Airflow run past its deadline: {DAG_ID} {RUN_ID}"
    assert "Deadline: 2026-11-29T09:00:05+00:00 (72 hours after it was queued)" in mail.text.splitlines()


def test_the_smtp_connection_is_configurable(mailbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", mailbox.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", mailbox.connection_json(password="not-the-password"))
    monkeypatch.setenv("AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_SMTP_CONN_ID", "alerts_smtp")

    notify_task_failure(task_failure_context({}))

    assert len(mailbox.received) == 1


def test_e_mail_alone_is_a_target(mailbox, caplog):
    with caplog.at_level(logging.INFO, logger="ground_truth_pipeline.alerts"):
        notify_task_failure(task_failure_context({}))

    assert len(mailbox.received) == 1
    assert "No alert sent" not in caplog.text
    assert f"E-mailed the alert 'Airflow task failed: {DAG_ID}.label.start_labeling_job' to " in caplog.text


def test_a_refused_login_is_logged_without_the_password_and_sns_still_gets_the_alert(
    mailbox, inbox, caplog, monkeypatch
):
    wrong_password = "wr0ng-but-still-secret"
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", mailbox.connection_json(password=wrong_password))

    with caplog.at_level(logging.DEBUG):
        notify_task_failure(task_failure_context({"alert_topic_arn": inbox.topic_arn}))

    assert mailbox.received == []
    assert len(inbox.received()) == 1
    assert (
        f"Could not e-mail the alert 'Airflow task failed: {DAG_ID}.label.start_labeling_job' to "
        "ops@example.com, ml-team@example.com through the connection 'smtp_default'" in caplog.text
    )
    assert "SMTPAuthenticationError" in caplog.text
    assert wrong_password not in caplog.text


def test_a_sent_alert_logs_no_password(mailbox, caplog):
    with caplog.at_level(logging.DEBUG):
        notify_task_failure(task_failure_context({}))

    assert len(mailbox.received) == 1
    assert caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("recipients", ["", " , "])
def test_no_recipients_means_no_e_mail(mailbox, monkeypatch, caplog, recipients):
    monkeypatch.setenv("AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_EMAILS", recipients)

    with caplog.at_level(logging.WARNING, logger="ground_truth_pipeline.alerts"):
        notify_task_failure(task_failure_context({}))

    assert mailbox.received == []
    assert "No alert sent" in caplog.text


def test_an_unreachable_mail_server_is_logged_not_raised(mailbox, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", mailbox.connection_json().replace(str(mailbox.port), "1"))

    with caplog.at_level(logging.ERROR, logger="ground_truth_pipeline.alerts"):
        notify_task_failure(task_failure_context({}))

    assert "Could not e-mail the alert" in caplog.text
    assert "ConnectionRefusedError" in caplog.text
