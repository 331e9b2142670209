"""Endpoints across ``down`` and ``up`` of the whole stack: their model servers end with the stack, and
after the restart an endpoint comes back in service on a new process, or fails when its model is gone.

The module starts its own stack in a tmp data dir (the session's ``local_stack`` is never restarted).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from tests.local_aws.conftest import LocalStack, process_alive, stack_config
from tests.local_aws.test_hosting_api import (
    BUCKET,
    GOOD_KEY,
    WAIT,
    Hosting,
    deploy,
    hosting_on,
    invoke,
    serving,
)
from tests.local_aws.test_model_server import encoded_image

KEPT = "restart-kept"
LOST = "restart-lost"
LOST_KEY = "models/lost/model.tar.gz"


@dataclass(frozen=True)
class Restarted:
    hosting: Hosting
    before: dict[str, dict[str, Any]]  # endpoint → its model server before the restart
    pids_alive_while_down: list[int]
    statuses_after_up: dict[str, str]


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restarted]:
    stack = LocalStack(stack_config(tmp_path_factory.mktemp("hosting-restart")))
    stack.up()
    try:
        hosting = hosting_on(stack.config, tmp_path_factory.mktemp("hosting-restart-model"))
        s3 = stack.config.boto3_client("s3")
        s3.copy_object(Bucket=BUCKET, Key=LOST_KEY, CopySource={"Bucket": BUCKET, "Key": GOOD_KEY})
        deploy(hosting, KEPT)
        deploy(hosting, LOST, f"s3://{BUCKET}/{LOST_KEY}")
        for name in (KEPT, LOST):
            hosting.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)
        before = {name: serving(stack.config, name)[0] for name in (KEPT, LOST)}
        s3.delete_object(Bucket=BUCKET, Key=LOST_KEY)

        stack.down(timeout_s=2)
        alive = [server["pid"] for server in before.values() if process_alive(server["pid"])]
        stack.up()

        statuses = {
            name: hosting.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
            for name in (KEPT, LOST)
        }
        yield Restarted(hosting, before, alive, statuses)
    finally:
        stack.down(timeout_s=2)


def test_model_servers_end_with_the_stack(restarted: Restarted) -> None:
    assert restarted.pids_alive_while_down == []


def test_an_endpoint_comes_back_in_service_on_a_new_process(restarted: Restarted) -> None:
    hosting = restarted.hosting
    assert restarted.statuses_after_up[KEPT] in ("SystemUpdating", "InService")

    hosting.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=KEPT, WaiterConfig=WAIT)

    (server,) = serving(hosting.config, KEPT)
    assert server["pid"] != restarted.before[KEPT]["pid"]
    assert process_alive(server["pid"])
    answer = invoke(hosting, KEPT, encoded_image("JPEG"), "image/jpeg")
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    described = hosting.sagemaker.describe_endpoint(EndpointName=KEPT)
    assert described["EndpointConfigName"] == f"{KEPT}-config"
    assert "FailureReason" not in described


def test_an_endpoint_whose_model_is_gone_is_marked_failed(restarted: Restarted) -> None:
    hosting = restarted.hosting

    with pytest.raises(WaiterError, match="Failed"):
        hosting.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=LOST, WaiterConfig=WAIT)

    described = hosting.sagemaker.describe_endpoint(EndpointName=LOST)
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"].startswith(
        f"Failed to download model data (bucket: {BUCKET}, key: {LOST_KEY})"
    )
    assert serving(hosting.config, LOST) == []
