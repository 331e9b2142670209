"""Training curves of SageMaker training jobs, read from their CloudWatch Logs.

The built-in object-detection algorithm writes each log line behind a prefix of date, time, level and thread,
``[06/18/2019 00:40:23 INFO 140404436858688] ``. It logs its configuration once, as a Python dict repr
(Python 2's, ``{u'num_training_samples': u'40', ...}``, in AWS's logs)::

    Final configuration: {...}

and its metric ``validation:mAP`` once per epoch and host::

    #quality_metric: host=<host>, epoch=<n>, validation mAP <score>=(<value>)

Only lines of exactly these forms, with or without the prefix, are read: a line that merely mentions
"validation mAP" or "Final configuration" is neither.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TRAINING_JOB_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
DEFAULT_MAX_PAGES = 10_000

# The prefix of the algorithm's lines: [month/day/year hour:minute:second LEVEL thread-id].
_LOG_PREFIX = r"(?:\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d [A-Z]+ \d+\] )?"
_FINAL_CONFIGURATION = re.compile(_LOG_PREFIX + r"Final configuration: (?P<configuration>\{.*\})\s*")
_VALIDATION_MAP = re.compile(
    _LOG_PREFIX
    + r"#quality_metric: host=(?P<host>[^,\s]+), epoch=(?P<epoch>\d+), "
    + r"validation mAP <score>=\((?P<value>[^()]*)\)\s*"
)


@dataclass(frozen=True)
class TrainingCurve:
    job_name: str
    num_training_samples: int | None
    validation_map: list[float]  # one value per epoch, in the order logged


def _training_job_streams(logs_client: Any, log_group: str, job_name: str) -> list[str]:
    """The job's log streams (``<job>/algo-1-...``), not those of other jobs whose names start alike."""
    paginator = logs_client.get_paginator("describe_log_streams")
    names = [
        stream["logStreamName"]
        for page in paginator.paginate(logGroupName=log_group, logStreamNamePrefix=job_name)
        for stream in page.get("logStreams", [])
    ]
    return sorted(n for n in names if n == job_name or n.startswith(job_name + "/"))


def log_messages(
    logs_client: Any,
    log_group: str,
    stream: str,
    page_limit: int | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[str]:
    """Every message of a log stream, oldest first.

    ``get_log_events`` has no end marker: at the end of a stream it returns the token it was given, so paging
    stops when the forward token stops changing. ``max_pages`` guards against a service that never does.
    """
    request: dict[str, Any] = {"logGroupName": log_group, "logStreamName": stream, "startFromHead": True}
    if page_limit is not None:
        request["limit"] = page_limit
    token = None
    for _ in range(max_pages):
        page = logs_client.get_log_events(**request, **({"nextToken": token} if token else {}))
        for event in page.get("events", []):
            yield event["message"]
        next_token = page.get("nextForwardToken")
        if next_token is None or next_token == token:
            return
        token = next_token
    raise RuntimeError(
        f"Log stream {log_group}/{stream} did not end within {max_pages} pages of get_log_events"
    )


def parse_num_training_samples(message: str) -> int | None:
    """``num_training_samples`` of a ``Final configuration`` line; None for any other line, or for a
    configuration without it."""
    match = _FINAL_CONFIGURATION.fullmatch(message)
    if match is None:
        return None
    try:
        configuration = ast.literal_eval(match["configuration"])  # u'...' strings are Python 3 literals too
    except (ValueError, SyntaxError):
        configuration = None
    if not isinstance(configuration, dict):
        raise ValueError(f"Final configuration is not a dict in log line {message!r}")
    samples = configuration.get("num_training_samples")
    if samples is None:
        return None
    try:
        return int(samples)
    except ValueError:
        raise ValueError(f"num_training_samples is not a whole number in log line {message!r}") from None


def parse_validation_map(message: str) -> float | None:
    """The value of a ``validation mAP`` metric line; None for any other line."""
    match = _VALIDATION_MAP.fullmatch(message)
    if match is None:
        return None
    try:
        return float(match["value"])
    except ValueError:
        raise ValueError(f"validation mAP is not a number in log line {message!r}") from None


def read_training_curve(
    logs_client: Any,
    job_name: str,
    log_group: str = TRAINING_JOB_LOG_GROUP,
    page_limit: int | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> TrainingCurve:
    """The training curve of one job from its CloudWatch Logs (``logs_client``: a boto3 ``logs`` client).

    With several instances every host writes its own stream; the curve is taken from the first stream (by
    name) that logged any validation mAP, so epochs are not repeated once per host; streams after it are read
    only while ``num_training_samples`` is still unknown. A job without log streams yet gives an empty curve.
    """
    num_training_samples = None
    validation_map: list[float] = []
    for stream in _training_job_streams(logs_client, log_group, job_name):
        stream_map: list[float] = []
        for message in log_messages(logs_client, log_group, stream, page_limit, max_pages):
            samples = parse_num_training_samples(message)
            if samples is not None and num_training_samples is None:
                num_training_samples = samples
            value = parse_validation_map(message)
            if value is not None:
                stream_map.append(value)
        if stream_map and not validation_map:
            validation_map = stream_map
        if validation_map and num_training_samples is not None:
            break
    return TrainingCurve(job_name, num_training_samples, validation_map)
