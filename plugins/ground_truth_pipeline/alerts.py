"""Failure alerts: an Airflow notifier, used as ``on_failure_callback``, that publishes to an SNS topic.

The topic comes from the run's params (``alert_topic_arn``), else from the Airflow Variable
``ground_truth_alert_topic_arn``; with neither, no alert is sent. The notifier publishes through the
provider's SnsHook rather than subclassing its SnsNotifier, because that one renders the message as a Jinja
template and an exception's text may contain braces; this one has no template fields.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.providers.amazon.aws.hooks.sns import SnsHook
from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

ALERT_TOPIC_PARAM = "alert_topic_arn"
ALERT_TOPIC_VARIABLE = "ground_truth_alert_topic_arn"
AWS_CONN_ID_PARAM = "aws_conn_id"
DEFAULT_AWS_CONN_ID = "aws_default"
SNS_SUBJECT_MAX_LENGTH = 100
# SNS accepts 256 KiB per message; an exception text longer than this is cut, the alert still goes out.
ERROR_TEXT_MAX_LENGTH = 10_000
UNKNOWN = "unknown"


class TaskFailureSnsNotifier(BaseNotifier):
    """
    Publishes a failed task's DAG id, run id, task id, try number, exception and log URL to SNS.

    Use as ``on_failure_callback`` of a DAG's tasks (``default_args``) or of the DAG itself, where Airflow
    passes the last failed task and a ``reason`` instead of the exception. Never raises: a failing alert
    is logged, not turned into a second error.
    """

    template_fields = ()

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            _publish_failure_alert(context)
        except Exception:
            log.exception("Could not send the failure alert for run %s", context.get("run_id"))


notify_task_failure = TaskFailureSnsNotifier()


def _publish_failure_alert(context: Mapping[str, Any]) -> None:
    params = context.get("params") or {}
    topic_arn = params.get(ALERT_TOPIC_PARAM) or _topic_arn_from_variable()
    if not topic_arn:
        log.info(
            "No failure alert sent: neither the run's param %r nor the Variable %r names an SNS topic.",
            ALERT_TOPIC_PARAM,
            ALERT_TOPIC_VARIABLE,
        )
        return
    failed_task = FailedTask.from_context(context)
    hook = SnsHook(aws_conn_id=params.get(AWS_CONN_ID_PARAM, DEFAULT_AWS_CONN_ID))
    hook.publish_to_target(target_arn=topic_arn, subject=failed_task.subject, message=failed_task.message)
    log.info("Sent the failure alert to %s.", topic_arn)


def _topic_arn_from_variable() -> str | None:
    from airflow.sdk import Variable

    return Variable.get(ALERT_TOPIC_VARIABLE, default=None)


@dataclass(frozen=True)
class FailedTask:
    """What an alert says about a failure, read from an Airflow callback context."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: str
    error: str
    log_url: str

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> FailedTask:
        """A DAG-level callback may lack the task instance; its fields then read ``unknown``."""
        ti = context.get("ti")
        exception = context.get("exception")
        error = (
            f"{type(exception).__name__}: {exception}"
            if exception is not None
            else str(context.get("reason", "not given"))
        )
        if len(error) > ERROR_TEXT_MAX_LENGTH:
            error = error[:ERROR_TEXT_MAX_LENGTH] + " [cut]"
        return cls(
            dag_id=getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", UNKNOWN),
            run_id=context.get("run_id") or getattr(ti, "run_id", UNKNOWN),
            task_id=getattr(ti, "task_id", UNKNOWN),
            try_number=str(getattr(ti, "try_number", UNKNOWN)),
            error=error,
            log_url=getattr(ti, "log_url", UNKNOWN),
        )

    @property
    def subject(self) -> str:
        """One line of at most 100 characters, the SNS limit."""
        failed = self.dag_id if self.task_id == UNKNOWN else f"{self.dag_id}.{self.task_id}"
        subject = f"Airflow task failed: {failed}"
        if len(subject) <= SNS_SUBJECT_MAX_LENGTH:
            return subject
        return subject[: SNS_SUBJECT_MAX_LENGTH - 3] + "..."

    @property
    def message(self) -> str:
        return "\n".join(
            [
                "An Airflow task failed.",
                f"DAG: {self.dag_id}",
                f"Run: {self.run_id}",
                f"Task: {self.task_id}",
                f"Try: {self.try_number}",
                f"Error: {self.error}",
                f"Log: {self.log_url}",
            ]
        )
