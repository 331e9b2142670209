"""Fixtures for the alert tests: moto's SNS with a subscribed queue, and a real SMTP server."""

import json
from collections.abc import Iterator

import pytest

from tests.smtp_inbox import SmtpInbox, smtp_inbox
from tests.sns_inbox import Subscribed, subscribe_queue

ALERT_SETTINGS = (
    "AIRFLOW_VAR_GROUND_TRUTH_ALERT_TOPIC_ARN",
    "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_EMAILS",
    "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_SMTP_CONN_ID",
)


@pytest.fixture
def alert_environment(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto, an ``aws_default`` connection, and no alert topic Variable nor e-mail settings."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    for name in ALERT_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def inbox(alert_environment: None) -> Subscribed:
    return subscribe_queue("us-east-1")


@pytest.fixture
def mailbox(alert_environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpInbox]:
    """A real SMTP server, the ``smtp_default`` connection to it, and alert e-mails configured to go there."""
    with smtp_inbox() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", server.connection_json())
        monkeypatch.setenv(
            "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_EMAILS", "ops@example.com, ml-team@example.com"
        )
        yield server
