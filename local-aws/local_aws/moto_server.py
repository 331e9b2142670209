"""SNS, SQS, IAM and STS for the local stack: moto's server, run as ``python -m moto.server`` on 127.0.0.1.

Nothing executes behind these services, so moto is an honest stand-in. Its state lives in memory only:
topics, subscriptions, queues, roles and published messages are gone after ``down`` (or any restart of
the stack); create them again after ``up``.

Reading published messages back: moto keeps every message published to a topic (``Topic.sent_notifications``)
and its server exposes all of its models' state at ``GET /moto-api/data.json``. ``published_messages`` reads a
topic's messages from there, so a test of failure alerts needs no subscription set up before the publish;
``python -m local_aws messages --topic-arn ARN`` prints them.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.environment import service_variables
from local_aws.processes import PortUse, ServiceSpec, StackError, http_answers, python_command

NAME = "moto"
DESCRIPTION = "SNS/SQS/IAM/STS (moto)"
# Loopback only: bypass any HTTP proxy of the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class PublishedMessage:
    """One message published to an SNS topic, as the publisher sent it."""

    message_id: str
    message: str
    subject: str | None
    attributes: dict[str, Any]


def _get(config: LocalAwsConfig, path: str, timeout: float) -> bytes:
    with _OPENER.open(f"{config.moto_endpoint}{path}", timeout=timeout) as response:
        return response.read()


def published_messages(config: LocalAwsConfig, topic_arn: str) -> list[PublishedMessage]:
    """Every message published to ``topic_arn`` since the stack started, oldest first.

    ``StackError`` when moto's server does not answer or has no such topic.
    """
    try:
        state = json.loads(_get(config, "/moto-api/data.json", timeout=10))
    except (OSError, http.client.HTTPException) as error:
        raise StackError(
            f"moto's server does not answer at {config.moto_endpoint} ({error}); start the stack with "
            "`python -m local_aws up`."
        ) from error
    topics = [topic for topic in state.get("sns", {}).get("Topic", []) if topic.get("arn") == topic_arn]
    if not topics:
        raise StackError(
            f"No SNS topic {topic_arn} on the local stack (topics live in memory and do not survive `down`)."
        )
    return [
        PublishedMessage(
            message_id=message_id, message=message, subject=subject, attributes=dict(attributes or {})
        )
        for topic in topics
        for message_id, message, subject, attributes, *_ in topic.get("sent_notifications", [])
    ]


def service(config: LocalAwsConfig) -> ServiceSpec:
    """Moto's server as a service of the stack."""
    return ServiceSpec(
        name=NAME,
        description=DESCRIPTION,
        prepare=lambda: python_command(
            "-m", "moto.server", "-H", config.bind_host, "-p", str(config.moto_port)
        ),
        endpoint=config.moto_endpoint,
        ports=(PortUse(config.moto_port, "SNS/SQS/IAM/STS API", "LOCAL_AWS_MOTO_PORT"),),
        probe=lambda: http_answers(f"{config.moto_endpoint}/moto-api/"),
        log_path=config.logs_dir / f"{NAME}.log",
        pid_path=config.pids_dir / f"{NAME}.pid",
        env=service_variables(config),
        cwd=config.data_dir,
    )
