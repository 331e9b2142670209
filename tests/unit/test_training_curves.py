import time

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ground_truth_pipeline.training_curves import (
    TRAINING_JOB_LOG_GROUP,
    TrainingCurve,
    log_messages,
    parse_num_training_samples,
    parse_validation_map,
    read_training_curve,
)

pytestmark = pytest.mark.calendar

# As AWS's algorithm logs them: a prefix of date, time, level and thread, then the message.
CONFIG_PY2 = (
    "[11/26/2026 10:15:02 INFO 139872] Final configuration: {u'num_training_samples': u'1000', "
    "u'base_network': u'vgg-16', u'epochs': u'30', u'mini_batch_size': u'32'}"
)
CONFIG_PY3 = (
    "[11/26/2026 10:15:02 INFO 139872] Final configuration: {'epochs': '2', 'num_training_samples': '48'}"
)


def _map_line(epoch, value, host="algo-1"):
    return (
        f"[11/26/2026 10:16:{epoch:02d} INFO 139872] "
        f"#quality_metric: host={host}, epoch={epoch}, validation mAP <score>=({value})"
    )


def test_parse_configuration_and_map_lines():
    assert parse_num_training_samples(CONFIG_PY2) == 1000
    assert parse_num_training_samples(CONFIG_PY3) == 48
    # AWS's Python 2 repr mixes str keys, unicode values and numbers.
    mixed = (
        "[06/18/2019 00:40:23 INFO 14] Final configuration: {'epochs': 30, u'num_training_samples': u'40'}"
    )
    assert parse_num_training_samples(mixed) == 40
    assert parse_num_training_samples("Final configuration: {u'num_training_samples': u'12'}") == 12
    assert parse_num_training_samples("Final configuration: {'epochs': '2'}") is None
    assert parse_validation_map(_map_line(3, 0.4567)) == pytest.approx(0.4567)
    assert parse_validation_map(_map_line(12, 0.5, host="algo-2")) == 0.5
    unprefixed = "#quality_metric: host=algo-1, epoch=0, validation mAP <score>=(0.25)"
    assert parse_validation_map(unprefixed) == 0.25


@pytest.mark.parametrize(
    "line",
    [
        "num_training_samples: '12' without the configuration marker",
        "Reading default configuration: {u'num_training_samples': u'12'}",
        "[11/26/2026 10:15:02 INFO 13] Merging with provided configuration: {u'num_training_samples': u'9'}",
        "The Final configuration: {u'num_training_samples': u'12'} is logged once",
    ],
)
def test_only_the_final_configuration_line_gives_num_training_samples(line):
    assert parse_num_training_samples(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "[11/26/2026 10:16:00 INFO 139872] #progress_metric: host=algo-1, completed 10 % of epochs",
        "[11/26/2026 10:16:00 INFO 139872] #quality_metric: host=algo-1, epoch=0, batch=3 train smooth_l1 "
        "<loss>=(0.5)",
        "[11/26/2026 10:16:00 INFO 139872] Updating the best model with validation-mAP=0.3",
        "[11/26/2026 10:16:00 INFO 139872] Saved the model of the best validation mAP (0.3) to model.tar.gz",
        "epoch 1 validation mAP <score>=(0.5)",
        "[11/26/2026 10:16:00 INFO 1] #quality_metric: host=algo-1, epoch=0, validation mAP <score>=(0.5) ok",
    ],
)
def test_lines_that_only_mention_validation_map_are_not_the_metric(line):
    assert parse_validation_map(line) is None


def test_a_metric_line_or_configuration_that_does_not_parse_is_a_clear_error():
    with pytest.raises(ValueError, match="validation mAP is not a number"):
        parse_validation_map(_map_line(0, "high"))
    with pytest.raises(ValueError, match="Final configuration is not a dict"):
        parse_num_training_samples("Final configuration: {u'epochs': u'30', oops}")
    with pytest.raises(ValueError, match="num_training_samples is not a whole number"):
        parse_num_training_samples("Final configuration: {u'num_training_samples': u'many'}")
    nested_too_deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ValueError, match="Final configuration is not a dict"):
        parse_num_training_samples(f"Final configuration: {{u'epochs': {nested_too_deep}}}")


@pytest.fixture
def logs():
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
        yield client


def _put(client, stream, messages):
    """Events stamped a minute ago: CloudWatch Logs drops events older than 14 days."""
    client.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream)
    start = int(time.time() * 1000) - 60_000
    events = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    client.put_log_events(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream, logEvents=events)


def test_curve_is_read_across_many_pages(logs):
    maps = [round(0.01 * epoch, 2) for epoch in range(30)]
    noise = [f"[11/26/2026] INFO batch {i}" for i in range(40)]
    _put(
        logs,
        "birds-al-2/algo-1-1795000000",
        [*noise, CONFIG_PY2, *[_map_line(e, v) for e, v in enumerate(maps)]],
    )

    pages = []
    logs.meta.events.register("before-call.cloudwatch-logs.GetLogEvents", lambda **kwargs: pages.append(1))

    curve = read_training_curve(logs, "birds-al-2", page_limit=7)

    assert curve == TrainingCurve("birds-al-2", 1000, maps)
    assert len(pages) == 12  # 71 events in 11 pages, then one that returns the same token


def test_other_jobs_with_the_same_prefix_and_extra_hosts_are_not_mixed_in(logs):
    _put(logs, "birds-al-2/algo-1-1795000000", [CONFIG_PY3, _map_line(0, 0.1), _map_line(1, 0.2)])
    _put(logs, "birds-al-2/algo-2-1795000000", [CONFIG_PY3, _map_line(0, 0.15), _map_line(1, 0.25)])
    _put(logs, "birds-al-20/algo-1-1795000000", [CONFIG_PY2, _map_line(0, 0.9)])

    assert read_training_curve(logs, "birds-al-2", page_limit=2) == TrainingCurve(
        "birds-al-2", 48, [0.1, 0.2]
    )
    assert read_training_curve(logs, "birds-al-20") == TrainingCurve("birds-al-20", 1000, [0.9])


def test_a_job_without_logs_has_an_empty_curve(logs):
    assert read_training_curve(logs, "never-ran") == TrainingCurve("never-ran", None, [])


def _page(messages, token):
    events = [{"timestamp": 1, "message": m, "ingestionTime": 2} for m in messages]
    return {"events": events, "nextForwardToken": token, "nextBackwardToken": "b/0"}


def test_paging_stops_when_the_service_returns_the_same_token():
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stream = "birds-al-3/algo-1-1795000000"
    first = {"logGroupName": TRAINING_JOB_LOG_GROUP, "logStreamName": stream, "startFromHead": True}
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_log_streams",
            {"logStreams": [{"logStreamName": stream}]},
            {"logGroupName": TRAINING_JOB_LOG_GROUP, "logStreamNamePrefix": "birds-al-3"},
        )
        stubber.add_response("get_log_events", _page([CONFIG_PY3, _map_line(0, 0.3)], "f/1"), first)
        stubber.add_response(
            "get_log_events", _page([_map_line(1, 0.4)], "f/2"), first | {"nextToken": "f/1"}
        )
        stubber.add_response("get_log_events", _page([], "f/2"), first | {"nextToken": "f/2"})

        curve = read_training_curve(client, "birds-al-3")

        stubber.assert_no_pending_responses()
    assert curve == TrainingCurve("birds-al-3", 48, [0.3, 0.4])


def test_a_stream_that_never_ends_hits_the_page_cap():
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        for page in range(3):
            stubber.add_response("get_log_events", _page([f"line {page}"], f"f/{page}"))
        with pytest.raises(RuntimeError, match="did not end within 3 pages"):
            list(log_messages(client, TRAINING_JOB_LOG_GROUP, "s", max_pages=3))
