"""Where an alert goes: an SNS topic chosen per run, and e-mail recipients from Airflow's configuration.

The topic is the run's param ``alert_topic_arn``, else the Airflow Variable ``ground_truth_alert_topic_arn``,
published through the connection ``aws_default``, the one every AWS call of the DAG uses.
The recipients and the SMTP connection are read from ``[ground_truth_object_detection]`` when an alert is
sent, in the process that sends it (DAG processor, worker or triggerer), so a change needs no DAG re-parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import Variable
from airflow.sdk.configuration import conf

from ground_truth_pipeline.configuration import CONFIG_SECTION

ALERT_TOPIC_PARAM = "alert_topic_arn"
ALERT_TOPIC_VARIABLE = "ground_truth_alert_topic_arn"
DEFAULT_AWS_CONN_ID = "aws_default"
ALERT_EMAILS_OPTION = "alert_emails"
SMTP_CONN_ID_OPTION = "alert_smtp_conn_id"
DEFAULT_SMTP_CONN_ID = "smtp_default"


@dataclass(frozen=True)
class AlertTargets:
    """An SNS topic (or none), published to through ``aws_default``, and e-mail recipients (maybe none)."""

    topic_arn: str | None
    emails: tuple[str, ...]
    smtp_conn_id: str

    @classmethod
    def for_run(cls, params: Mapping[str, Any]) -> AlertTargets:
        """``params``: the run's params, or its conf where Airflow gives no params (deadline callbacks)."""
        emails = conf.get(CONFIG_SECTION, ALERT_EMAILS_OPTION, fallback="")
        return cls(
            topic_arn=params.get(ALERT_TOPIC_PARAM) or Variable.get(ALERT_TOPIC_VARIABLE, default=None),
            emails=tuple(address.strip() for address in emails.split(",") if address.strip()),
            smtp_conn_id=conf.get(CONFIG_SECTION, SMTP_CONN_ID_OPTION, fallback=DEFAULT_SMTP_CONN_ID),
        )

    @property
    def none_configured(self) -> bool:
        return not self.topic_arn and not self.emails
