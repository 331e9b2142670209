"""The run deadline: its setting, and its callback run the way Airflow's triggerer runs it.

Airflow 3.3's scheduler hands a missed deadline's callback to the triggerer as a ``CallbackTrigger`` whose
kwargs carry a ``context`` of the run (the REST API's DAG run response, as JSON) and the deadline; these
tests run that trigger on the callback the DAG's deadline names.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import AsyncCallback
from airflow.sdk.definitions.deadline import DagRunQueuedAtDeadline
from airflow.triggers.callback import CallbackTrigger

from ground_truth_pipeline.alerts.deadline import DEFAULT_RUN_DEADLINE_HOURS, run_deadline_alert

DAG_ID = "ground_truth_object_detection"
RUN_ID = "manual__2026-11-26T09:00:00+00:00"
DEADLINE_TIME = datetime(2026, 11, 29, 9, 0, 5, tzinfo=UTC)


def deadline_context(state: str, conf: dict[str, Any]) -> dict[str, Any]:
    """What ``Deadline.handle_miss`` puts in the callback's kwargs (less fields the alert does not read)."""
    return {
        "dag_run": {
            "dag_run_id": RUN_ID,
            "dag_id": DAG_ID,
            "logical_date": "2026-11-26T09:00:00Z",
            "queued_at": "2026-11-26T09:00:05Z",
            "start_date": "2026-11-26T09:00:07Z",
            "end_date": None,
            "data_interval_start": "2026-11-26T09:00:00Z",
            "data_interval_end": "2026-11-26T09:00:00Z",
            "run_type": "manual",
            "state": state,
            "conf": conf,
        },
        "deadline": {"id": "01967d2e-0000-7000-8000-000000000000", "deadline_time": DEADLINE_TIME},
    }


def run_callback_trigger(callback: AsyncCallback, context: dict[str, Any]) -> list[dict[str, Any]]:
    """The trigger's events, as the triggerer would get them."""
    trigger = CallbackTrigger(
        callback_path=callback.path, callback_kwargs={**callback.kwargs, "context": context}
    )

    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(events())


def test_the_deadline_is_off_by_default():
    """apache/airflow#73428: with a deadline, dag.test() fails once a run succeeds (Airflow 3.3.2)."""
    assert run_deadline_alert(DEFAULT_RUN_DEADLINE_HOURS) is None


def test_a_deadline_counts_from_when_the_run_was_queued_and_calls_back_in_the_triggerer():
    alert = run_deadline_alert("72")

    assert isinstance(alert.reference, DagRunQueuedAtDeadline)
    assert alert.interval == timedelta(hours=72)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "ground_truth_pipeline.alerts.deadline.alert_missed_deadline"
    assert alert.callback.kwargs == {"deadline_hours": 72.0}


@pytest.mark.parametrize("setting", ["1.5", " 1.5 "])
def test_hours_may_be_fractional(setting):
    assert run_deadline_alert(setting).interval == timedelta(minutes=90)


@pytest.mark.parametrize("setting", ["0", "0.0", "none", "None", "off", ""])
def test_zero_or_none_turns_the_deadline_off(setting):
    assert run_deadline_alert(setting) is None


@pytest.mark.parametrize("setting", ["-3", "three days", "inf", "nan"])
def test_a_bad_setting_is_an_error_naming_the_option(setting):
    with pytest.raises(ValueError, match=r"\[ground_truth_object_detection\] run_deadline_hours must be"):
        run_deadline_alert(setting)


def test_a_missed_deadline_alerts_the_runs_topic(inbox):
    callback = run_deadline_alert("72").callback

    events = run_callback_trigger(callback, deadline_context("running", {"alert_topic_arn": inbox.topic_arn}))

    assert [event["state"] for event in events] == ["running", "success"]
    [notification] = inbox.received()
    assert notification["Subject"] == f"Airflow run past its deadline: {DAG_ID} {RUN_ID}"
    assert notification["Message"].splitlines() == [
        "An Airflow DAG run has not finished by its deadline.",
        f"DAG: {DAG_ID}",
        f"Run: {RUN_ID}",
        "Logical date: 2026-11-26T09:00:00Z",
        "Data interval: 2026-11-26T09:00:00Z to 2026-11-26T09:00:00Z",
        "State: running",
        "Queued at: 2026-11-26T09:00:05Z",
        "Deadline: 2026-11-29T09:00:05+00:00 (72 hours after it was queued)",
    ]


def test_the_topic_falls_back_to_the_variable(inbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GROUND_TRUTH_ALERT_TOPIC_ARN", inbox.topic_arn)

    run_callback_trigger(run_deadline_alert("6").callback, deadline_context("queued", {}))

    [notification] = inbox.received()
    assert "State: queued" in notification["Message"].splitlines()


def test_a_run_that_already_failed_gets_no_deadline_alert(inbox, caplog):
    context = deadline_context("failed", {"alert_topic_arn": inbox.topic_arn})

    with caplog.at_level(logging.INFO, logger="ground_truth_pipeline.alerts"):
        run_callback_trigger(run_deadline_alert("72").callback, context)

    assert inbox.received() == []
    assert f"Run {RUN_ID} failed before its deadline: no deadline alert." in caplog.text


def test_without_a_target_the_callback_logs_which_settings_would_set_one(inbox, caplog):
    with caplog.at_level(logging.WARNING, logger="ground_truth_pipeline.alerts"):
        events = run_callback_trigger(run_deadline_alert("72").callback, deadline_context("running", {}))

    assert events[-1]["state"] == "success"
    assert inbox.received() == []
    assert f"No alert sent for 'Airflow run past its deadline: {DAG_ID} {RUN_ID}'" in caplog.text
    assert "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_EMAILS" in caplog.text


def test_a_deadline_alert_that_cannot_be_sent_is_logged_and_the_callback_succeeds(inbox, caplog):
    missing_topic = inbox.topic_arn.replace("ground-truth-alerts", "no-such-topic")

    with caplog.at_level(logging.ERROR, logger="ground_truth_pipeline.alerts"):
        events = run_callback_trigger(
            run_deadline_alert("72").callback, deadline_context("running", {"alert_topic_arn": missing_topic})
        )

    assert events[-1]["state"] == "success"
    assert f"Could not publish the alert 'Airflow run past its deadline: {DAG_ID} {RUN_ID}'" in caplog.text
