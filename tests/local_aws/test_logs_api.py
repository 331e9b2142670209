"""CloudWatch Logs operations of the local service through real boto3 clients, and the internal LogStore."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.embedded import EmbeddedService
from local_aws.sagemaker_service.log_store import LogStore
from tests.local_aws.ports import free_port
from tests.local_aws.service_clients import unvalidated_client

pytestmark = pytest.mark.calendar

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAwsConfig]:
    config = LocalAwsConfig(data_dir=tmp_path_factory.mktemp("stack"), sagemaker_port=free_port())
    with EmbeddedService(config):
        yield config


@pytest.fixture(scope="module")
def logs(config: LocalAwsConfig) -> Any:
    return config.boto3_client("logs")


@pytest.fixture(scope="module")
def unvalidated_logs(config: LocalAwsConfig) -> Any:
    """A client that sends what it is given, so the service's own validation answers."""
    return unvalidated_client(config, "logs")


def now_ms() -> int:
    return int(time.time() * 1000)


def error_of(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


def make_stream(logs: Any, group: str, stream: str, messages: list[str], start: int | None = None) -> int:
    """A stream with ``messages`` one millisecond apart; the first one's timestamp."""
    start = now_ms() - 60_000 if start is None else start
    try:
        logs.create_log_group(logGroupName=group)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [{"timestamp": start + index, "message": message} for index, message in enumerate(messages)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    return start


def test_groups_and_streams_are_created_once(logs, config):
    logs.create_log_group(logGroupName="/test/create")
    error = error_of(lambda: logs.create_log_group(logGroupName="/test/create"))
    assert error["Code"] == "ResourceAlreadyExistsException"
    logs.create_log_stream(logGroupName="/test/create", logStreamName="one")
    error = error_of(lambda: logs.create_log_stream(logGroupName="/test/create", logStreamName="one"))
    assert error["Code"] == "ResourceAlreadyExistsException"
    error = error_of(lambda: logs.create_log_stream(logGroupName="/test/absent", logStreamName="one"))
    assert error == {
        "Code": "ResourceNotFoundException",
        "Message": "The specified log group does not exist.",
    }
    group = logs.describe_log_groups(logGroupNamePrefix="/test/create")["logGroups"][0]
    assert group["arn"] == f"arn:aws:logs:us-east-1:{config.account_id}:log-group:/test/create:*"
    assert group["logGroupArn"] == f"arn:aws:logs:us-east-1:{config.account_id}:log-group:/test/create"
    assert abs(group["creationTime"] - now_ms()) < 60_000
    assert group["logGroupClass"] == "STANDARD"


def test_names_are_validated_with_the_logs_error_code(unvalidated_logs):
    error = error_of(lambda: unvalidated_logs.create_log_group(logGroupName="bad name!"))
    assert error["Code"] == "InvalidParameterException"
    assert "'logGroupName'" in error["Message"]
    error = error_of(lambda: unvalidated_logs.describe_log_groups(limit=51))
    assert error["Code"] == "InvalidParameterException"
    assert "'limit'" in error["Message"]
    assert "less than or equal to 50" in error["Message"]


def test_put_log_events_follows_aws_rules(logs, unvalidated_logs):
    logs.create_log_group(logGroupName="/test/put")
    logs.create_log_stream(logGroupName="/test/put", logStreamName="s")
    now = now_ms()

    def put(events: list[dict[str, Any]], client: Any = logs) -> dict[str, Any]:
        return client.put_log_events(logGroupName="/test/put", logStreamName="s", logEvents=events)

    first = put([{"timestamp": now, "message": "a"}])
    second = put([{"timestamp": now + 1, "message": "b"}], client=logs)
    assert first["nextSequenceToken"] != second["nextSequenceToken"]
    # The sequence token is ignored, as AWS now ignores it.
    logs.put_log_events(
        logGroupName="/test/put",
        logStreamName="s",
        logEvents=[{"timestamp": now + 2, "message": "c"}],
        sequenceToken="stale",
    )
    error = error_of(
        lambda: put([{"timestamp": now, "message": "x"}, {"timestamp": now - 1, "message": "y"}])
    )
    assert error["Code"] == "InvalidParameterException"
    assert "chronological order" in error["Message"]
    error = error_of(
        lambda: put([{"timestamp": now - 25 * HOUR_MS, "message": "x"}, {"timestamp": now, "message": "y"}])
    )
    assert error["Code"] == "InvalidParameterException"
    assert "24 hours" in error["Message"]
    error = error_of(lambda: put([{"timestamp": now, "message": "x" * 1_048_576}]))
    assert error["Code"] == "InvalidParameterException"
    assert "1048576" in error["Message"]
    error = error_of(lambda: put([{"timestamp": now, "message": "x"}] * 10_001, client=unvalidated_logs))
    assert error["Code"] == "InvalidParameterException"
    assert "'logEvents'" in error["Message"]

    mixed = put(
        [
            {"timestamp": now - 15 * 24 * HOUR_MS, "message": "too old"},
            {"timestamp": now + 3, "message": "kept"},
            {"timestamp": now + 3 * HOUR_MS, "message": "too new"},
        ]
    )
    assert mixed["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1, "tooNewLogEventStartIndex": 2}
    events = logs.get_log_events(logGroupName="/test/put", logStreamName="s", startFromHead=True)["events"]
    assert [event["message"] for event in events] == ["a", "b", "c", "kept"]
    assert all(event["ingestionTime"] >= now - 1000 for event in events)
    error = error_of(
        lambda: logs.put_log_events(
            logGroupName="/test/put", logStreamName="t", logEvents=[{"timestamp": now, "message": "x"}]
        )
    )
    assert error == {
        "Code": "ResourceNotFoundException",
        "Message": "The specified log stream does not exist.",
    }


def test_describe_log_groups_filters_and_pages(logs):
    names = [f"/test/groups/{index:02d}" for index in range(7)]
    for name in names:
        logs.create_log_group(logGroupName=name)
    pages = list(
        logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix="/test/groups/", PaginationConfig={"PageSize": 3}
        )
    )
    assert [len(page["logGroups"]) for page in pages] == [3, 3, 1]
    assert [group["logGroupName"] for page in pages for group in page["logGroups"]] == names
    matched = logs.describe_log_groups(logGroupNamePattern="groups/0")["logGroups"]
    assert [group["logGroupName"] for group in matched] == names
    assert set(matched[0]) == {"logGroupName", "creationTime", "arn"}
    error = error_of(
        lambda: logs.describe_log_groups(logGroupNamePrefix="/test", logGroupNamePattern="groups")
    )
    assert error["Code"] == "InvalidParameterException"
    error = error_of(lambda: logs.describe_log_groups(nextToken="forged"))
    assert error == {"Code": "InvalidParameterException", "Message": "The specified nextToken is invalid."}


def test_describe_log_streams_orders_filters_and_pages(logs):
    base = now_ms() - 60_000
    for name, offset in [("job-b/algo-1", 30), ("job-a/algo-1", 20), ("job-c/algo-1", 10), ("other", 40)]:
        make_stream(logs, "/test/streams", name, [f"{name} line"], start=base + offset)

    def names(**options: Any) -> list[str]:
        pages = logs.get_paginator("describe_log_streams").paginate(
            logGroupName="/test/streams", PaginationConfig={"PageSize": 2}, **options
        )
        return [stream["logStreamName"] for page in pages for stream in page["logStreams"]]

    assert names() == ["job-a/algo-1", "job-b/algo-1", "job-c/algo-1", "other"]
    assert names(logStreamNamePrefix="job-") == ["job-a/algo-1", "job-b/algo-1", "job-c/algo-1"]
    assert names(descending=True) == ["other", "job-c/algo-1", "job-b/algo-1", "job-a/algo-1"]
    assert names(orderBy="LastEventTime") == ["job-c/algo-1", "job-a/algo-1", "job-b/algo-1", "other"]
    assert names(orderBy="LastEventTime", descending=True)[0] == "other"
    first = logs.describe_log_streams(logGroupName="/test/streams", limit=2)
    assert len(first["logStreams"]) == 2 and "nextToken" in first
    stream = first["logStreams"][0]
    assert stream["firstEventTimestamp"] == stream["lastEventTimestamp"] == base + 20
    assert stream["arn"].endswith(":log-group:/test/streams:log-stream:job-a/algo-1")
    assert stream["storedBytes"] == 0
    error = error_of(
        lambda: logs.describe_log_streams(
            logGroupName="/test/streams", logStreamNamePrefix="job", orderBy="LastEventTime"
        )
    )
    assert error["Code"] == "InvalidParameterException"
    assert "LastEventTime" in error["Message"]
    error = error_of(lambda: logs.describe_log_streams(logGroupName="/test/nowhere"))
    assert error["Code"] == "ResourceNotFoundException"
    by_arn = logs.describe_log_streams(
        logGroupIdentifier="arn:aws:logs:us-east-1:123456789012:log-group:/test/streams", limit=1
    )
    assert by_arn["logStreams"][0]["logStreamName"] == "job-a/algo-1"


def test_get_log_events_pages_forward_and_returns_the_same_token_at_the_end(logs):
    messages = [f"line {index}" for index in range(25)]
    make_stream(logs, "/test/get", "forward", messages)
    request = {"logGroupName": "/test/get", "logStreamName": "forward", "startFromHead": True, "limit": 10}
    seen: list[str] = []
    pages = 0
    token = None
    while True:
        page = logs.get_log_events(**request, **({"nextToken": token} if token else {}))
        pages += 1
        assert page["nextForwardToken"].startswith("f/")
        assert page["nextBackwardToken"].startswith("b/")
        seen += [event["message"] for event in page["events"]]
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        token = page["nextForwardToken"]
    assert seen == messages
    assert pages == 4  # 10, 10, 5, then the end (the same token again)
    again = logs.get_log_events(**request, nextToken=token)
    assert again["nextForwardToken"] == token

    logs.put_log_events(
        logGroupName="/test/get",
        logStreamName="forward",
        logEvents=[{"timestamp": now_ms(), "message": "late"}],
    )
    assert [event["message"] for event in logs.get_log_events(**request, nextToken=token)["events"]] == [
        "late"
    ]


def test_get_log_events_starts_at_the_tail_and_pages_backward(logs):
    messages = [f"line {index}" for index in range(25)]
    make_stream(logs, "/test/get", "backward", messages)
    request = {"logGroupName": "/test/get", "logStreamName": "backward", "limit": 10}
    tail = logs.get_log_events(**request)
    assert [event["message"] for event in tail["events"]] == messages[15:]
    middle = logs.get_log_events(**request, nextToken=tail["nextBackwardToken"])
    assert [event["message"] for event in middle["events"]] == messages[5:15]
    head = logs.get_log_events(**request, nextToken=middle["nextBackwardToken"])
    assert [event["message"] for event in head["events"]] == messages[:5]
    end = logs.get_log_events(**request, nextToken=head["nextBackwardToken"])
    assert end["events"] == []
    assert end["nextBackwardToken"] == head["nextBackwardToken"]
    forward = logs.get_log_events(**request, nextToken=head["nextForwardToken"])
    assert [event["message"] for event in forward["events"]] == messages[5:15]


def test_get_log_events_time_range_includes_start_and_excludes_end(logs):
    start = make_stream(logs, "/test/get", "times", [f"line {index}" for index in range(10)])
    page = logs.get_log_events(
        logGroupName="/test/get",
        logStreamName="times",
        startTime=start + 2,
        endTime=start + 5,
        startFromHead=True,
    )
    assert [event["message"] for event in page["events"]] == ["line 2", "line 3", "line 4"]
    empty = logs.get_log_events(logGroupName="/test/get", logStreamName="times", startTime=start + 100)
    assert empty["events"] == []
    error = error_of(
        lambda: logs.get_log_events(logGroupName="/test/get", logStreamName="times", nextToken="f/12")
    )
    assert error == {"Code": "InvalidParameterException", "Message": "The specified nextToken is invalid."}
    error = error_of(lambda: logs.get_log_events(logGroupName="/test/get", logStreamName="absent"))
    assert error["Code"] == "ResourceNotFoundException"


def test_filter_log_events_interleaves_streams_and_matches_patterns(logs):
    start = now_ms() - 60_000
    make_stream(logs, "/test/filter", "job/algo-1", ["ERROR disk full", "epoch 1 validation mAP=0.5"], start)
    make_stream(logs, "/test/filter", "job/algo-2", ["WARN slow", "Final configuration: x"], start + 100)
    make_stream(logs, "/test/filter", "other", ["ERROR Retrying later"], start + 200)

    def messages(**options: Any) -> list[str]:
        events = logs.filter_log_events(logGroupName="/test/filter", **options)["events"]
        return [event["message"] for event in events]

    assert messages() == [
        "ERROR disk full",
        "epoch 1 validation mAP=0.5",
        "WARN slow",
        "Final configuration: x",
        "ERROR Retrying later",
    ]
    assert messages(filterPattern="ERROR") == ["ERROR disk full", "ERROR Retrying later"]
    assert messages(filterPattern="ERROR -Retrying") == ["ERROR disk full"]
    assert messages(filterPattern="?WARN ?disk") == ["ERROR disk full", "WARN slow"]
    assert messages(filterPattern='"validation mAP"') == ["epoch 1 validation mAP=0.5"]
    assert messages(filterPattern="validation Final") == []
    assert messages(filterPattern="error") == []  # case-sensitive, as on AWS
    assert messages(filterPattern="%mAP=[0-9.]+%") == ["epoch 1 validation mAP=0.5"]
    assert messages(logStreamNamePrefix="job/") == [
        "ERROR disk full",
        "epoch 1 validation mAP=0.5",
        "WARN slow",
        "Final configuration: x",
    ]
    assert messages(logStreamNames=["other", "never-created"]) == ["ERROR Retrying later"]
    assert messages(startTime=start + 1, endTime=start + 100) == ["epoch 1 validation mAP=0.5", "WARN slow"]
    assert messages(startFromHead=False)[0] == "ERROR Retrying later"

    event = logs.filter_log_events(logGroupName="/test/filter", limit=1)["events"][0]
    assert event["logStreamName"] == "job/algo-1"
    assert event["eventId"].isdigit()
    assert event["timestamp"] == start
    error = error_of(
        lambda: logs.filter_log_events(
            logGroupName="/test/filter", logStreamNames=["a"], logStreamNamePrefix="b"
        )
    )
    assert error["Code"] == "InvalidParameterException"
    error = error_of(
        lambda: logs.filter_log_events(logGroupName="/test/filter", filterPattern="{ $.level = 1 }")
    )
    assert error["Code"] == "InvalidParameterException"
    assert "filterPattern" in error["Message"]


def test_filter_log_events_pages_until_no_token(logs):
    messages = [f"{'match' if index % 3 == 0 else 'skip'} {index}" for index in range(30)]
    make_stream(logs, "/test/filter-pages", "s", messages)
    pages = list(
        logs.get_paginator("filter_log_events").paginate(
            logGroupName="/test/filter-pages", filterPattern="match", PaginationConfig={"PageSize": 4}
        )
    )
    assert [len(page["events"]) for page in pages] == [4, 4, 2]
    assert "nextToken" not in pages[-1]
    assert [event["message"] for page in pages for event in page["events"]] == messages[::3]
    descending = list(
        logs.get_paginator("filter_log_events").paginate(
            logGroupName="/test/filter-pages", startFromHead=False, PaginationConfig={"PageSize": 7}
        )
    )
    assert [event["message"] for page in descending for event in page["events"]] == messages[::-1]


def test_the_internal_log_store_writes_what_the_api_reads(logs, config):
    store = LogStore(config.state_db)
    assert (
        store.put_events(
            "/aws/sagemaker/TrainingJobs", "job-1/algo-1", [(now_ms() - 1000, "first"), "second"]
        )
        == 2
    )
    assert store.put_events("/aws/sagemaker/TrainingJobs", "job-1/algo-1", ["third"]) == 1
    page = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="job-1/algo-1", startFromHead=True
    )
    assert [event["message"] for event in page["events"]] == ["first", "second", "third"]


def test_logs_survive_a_restart(tmp_path):
    config = LocalAwsConfig(data_dir=tmp_path, sagemaker_port=free_port())
    with EmbeddedService(config):
        make_stream(config.boto3_client("logs"), "/test/restart", "s", ["kept"])
    restarted = LocalAwsConfig(data_dir=tmp_path, sagemaker_port=free_port())
    with EmbeddedService(restarted):
        logs = restarted.boto3_client("logs")
        assert logs.describe_log_groups()["logGroups"][0]["logGroupName"] == "/test/restart"
        events = logs.get_log_events(logGroupName="/test/restart", logStreamName="s")["events"]
        assert [event["message"] for event in events] == ["kept"]
