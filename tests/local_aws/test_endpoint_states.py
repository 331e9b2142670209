"""The product's endpoint states and the stack's, held against each other and against SageMaker's names.

The product (``ResumableSageMakerHook``) waits for a settling endpoint before it updates or deletes it, and
keeps or replaces one that has ended; the stack (``local_aws.sagemaker_service.endpoints``) reports the
statuses of its endpoints' lifecycle. Every status the stack reports must be one the product places, as
SageMaker names it: what the stack is still deploying, the product waits for; what the stack leaves an
endpoint in, the product takes as ended.
"""

from __future__ import annotations

from pathlib import Path

import botocore.session
import pytest

from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook
from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.endpoints import (
    DEPLOYED_STATUSES,
    DEPLOYING_STATUSES,
    ENDPOINT_STATUSES,
    SETTLED_STATUSES,
    EndpointStore,
    VariantSpec,
)
from local_aws.sagemaker_service.store import StateDb

SAGEMAKER_ENDPOINT_STATUSES = frozenset(
    botocore.session.get_session().get_service_model("sagemaker").shape_for("EndpointStatus").enum
)
VARIANTS = [VariantSpec("AllTraffic", "model", "image", "s3://b/model.tar.gz", 1.0, "ml.m5.large", 1, None)]


@pytest.fixture
def store(tmp_path: Path) -> EndpointStore:
    config = LocalAwsConfig(data_dir=tmp_path)
    config.state_db.parent.mkdir(parents=True, exist_ok=True)
    return EndpointStore(StateDb(config.state_db), config)


def lifecycle_statuses(store: EndpointStore) -> list[str]:
    """The statuses two endpoints pass through, as the API and the endpoint manager move them along."""
    seen: list[str] = []

    def look(name: str) -> None:
        seen.append(store.get(name).status)

    def deploy(name: str, status: str, succeeds: bool) -> None:
        generation = store.claim(name, status)
        assert generation is not None
        if succeeds:
            store.deployed(name, generation, serving=[])
        else:
            store.deployment_failed(name, generation, "the model server did not answer")
        look(name)

    store.create({"EndpointName": "kept", "EndpointConfigName": "config"}, VARIANTS)
    look("kept")
    deploy("kept", "Creating", succeeds=True)
    assert store.request_update("kept", "config-2", VARIANTS)
    look("kept")
    deploy("kept", "Updating", succeeds=False)
    store.relaunch("kept")
    look("kept")
    deploy("kept", "SystemUpdating", succeeds=False)
    store.request_delete("kept")
    look("kept")
    store.remove("kept")
    assert store.find("kept") is None

    store.create({"EndpointName": "broken", "EndpointConfigName": "config"}, VARIANTS)
    deploy("broken", "Creating", succeeds=False)
    return seen


def test_the_stack_reports_the_statuses_it_declares(store: EndpointStore) -> None:
    seen = lifecycle_statuses(store)

    assert seen == [
        "Creating",
        "InService",
        "Updating",
        "InService",
        "SystemUpdating",
        "Failed",
        "Deleting",
        "Failed",
    ]
    assert set(seen) == set(ENDPOINT_STATUSES)


def test_the_stacks_statuses_are_sagemakers_and_its_sets_cover_them() -> None:
    assert set(ENDPOINT_STATUSES) <= SAGEMAKER_ENDPOINT_STATUSES
    assert set(DEPLOYING_STATUSES).isdisjoint(SETTLED_STATUSES)
    assert {*DEPLOYING_STATUSES, *SETTLED_STATUSES, "Deleting"} == set(ENDPOINT_STATUSES)
    assert set(DEPLOYED_STATUSES) <= set(ENDPOINT_STATUSES)


def test_the_products_endpoint_states_place_every_sagemaker_status_once() -> None:
    hook = ResumableSageMakerHook
    groups = (hook.endpoint_settling_states, hook.endpoint_deleting_states, hook.endpoint_ended_states)

    assert set().union(*groups) == SAGEMAKER_ENDPOINT_STATUSES
    assert sum(len(group) for group in groups) == len(SAGEMAKER_ENDPOINT_STATUSES)


def test_the_product_waits_for_what_the_stack_deploys_and_takes_what_it_settles_in_as_ended() -> None:
    hook = ResumableSageMakerHook
    stack = set(ENDPOINT_STATUSES)

    assert hook.endpoint_settling_states & stack == set(DEPLOYING_STATUSES)
    assert hook.endpoint_ended_states & stack == set(SETTLED_STATUSES)
    assert hook.endpoint_deleting_states & stack == stack - set(DEPLOYING_STATUSES) - set(SETTLED_STATUSES)
    assert hook.endpoint_failed_states & stack == {"Failed"}
