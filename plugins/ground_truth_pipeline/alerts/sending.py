"""Sends an alert to its targets: publishes to SNS through the Amazon provider's hook, e-mails through the
SMTP provider's notifier.

Each target is tried on its own, so a broken mail server does not stop the SNS alert. A failure is logged,
never raised: alerts run in failure and deadline callbacks, where an exception would only hide the first
error. Only connection ids are logged, never a connection, so an SMTP password cannot reach the log.
"""

from __future__ import annotations

import html
import logging

from airflow.providers.amazon.aws.hooks.sns import SnsHook
from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from ground_truth_pipeline.alerts.messages import Alert
from ground_truth_pipeline.alerts.targets import (
    ALERT_EMAILS_OPTION,
    ALERT_TOPIC_PARAM,
    ALERT_TOPIC_VARIABLE,
    DEFAULT_AWS_CONN_ID,
    AlertTargets,
)
from ground_truth_pipeline.configuration import CONFIG_SECTION, env_variable

log = logging.getLogger(__name__)


def send_alert(alert: Alert, targets: AlertTargets) -> None:
    """Publishes ``alert`` to the topic and e-mails it to the recipients; says so when there are neither."""
    if targets.none_configured:
        log.warning(
            "No alert sent for %r: no SNS topic (param %r or Variable %r) and no e-mail recipients "
            "(config [%s] %s, env %s).",
            alert.subject,
            ALERT_TOPIC_PARAM,
            ALERT_TOPIC_VARIABLE,
            CONFIG_SECTION,
            ALERT_EMAILS_OPTION,
            env_variable(ALERT_EMAILS_OPTION),
        )
        return
    if targets.topic_arn:
        _publish(alert, targets.topic_arn)
    if targets.emails:
        _email(alert, targets.emails, targets.smtp_conn_id)


def _publish(alert: Alert, topic_arn: str) -> None:
    try:
        hook = SnsHook(aws_conn_id=DEFAULT_AWS_CONN_ID)
        hook.publish_to_target(target_arn=topic_arn, subject=alert.subject, message=alert.message)
    except Exception:
        log.exception("Could not publish the alert %r to the SNS topic %s", alert.subject, topic_arn)
    else:
        log.info("Published the alert %r to the SNS topic %s.", alert.subject, topic_arn)


def _email(alert: Alert, emails: tuple[str, ...], smtp_conn_id: str) -> None:
    """``notify`` is called rather than the notifier itself, which would render the subject and body as
    Jinja templates; an error text may contain braces. The sender is the connection's ``from_email``."""
    recipients = ", ".join(emails)
    try:
        notifier = SmtpNotifier(
            to=list(emails),
            subject=alert.subject,
            html_content=f"<pre>{html.escape(alert.message)}</pre>",
            smtp_conn_id=smtp_conn_id,
        )
        notifier.notify({})
    except Exception:
        log.exception(
            "Could not e-mail the alert %r to %s through the connection %r",
            alert.subject,
            recipients,
            smtp_conn_id,
        )
    else:
        log.info("E-mailed the alert %r to %s.", alert.subject, recipients)
