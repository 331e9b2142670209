"""The endpoint's setup/teardown wiring, run with ``dag.test()`` on moto: no endpoint outlives its run.

The test DAG repeats the endpoint part of the deploy group as ``dags/ground_truth_object_detection.py`` wires
it; ``test_the_mirror_is_wired_like_the_deploy_group`` fails when the two drift apart.
"""

import json
from datetime import datetime

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.sdk import DAG, TriggerRule, task
from botocore.exceptions import ClientError

from ground_truth_pipeline.aws.resumable_operators import ResumableEndpointOperator
from ground_truth_pipeline.experiment import ExperimentRun
from tests.conftest import REGION, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.calendar]

ROLE = "arn:aws:iam::123456789012:role/GroundTruthExecution"
RUN = ExperimentRun("ground_truth_object_detection", "manual__1", "experiments", "demo", "Bird", "/m/015p6")
MODEL = {"Model": {"ModelName": RUN.resource_name("model")}}
ENDPOINT_TASKS = ("build_endpoint_request", "create_endpoint", "invoke_endpoint", "delete_endpoint")


@pytest.fixture
def aws(airflow_db, monkeypatch, mocked_aws):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}})
    )
    return boto3.client("sagemaker", region_name=REGION)


def create_model(sagemaker):
    sagemaker.create_model(
        ModelName=MODEL["Model"]["ModelName"],
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1",
            "ModelDataUrl": f"{RUN.layout.training_output_uri}job/output/model.tar.gz",
        },
    )


def endpoint_dag(dag_id: str) -> DAG:
    """The deploy group's endpoint tasks, with an invoke task that always fails.

    ``deferrable=False``: ``dag.test()`` runs a deferred task's trigger in process, and the SageMaker trigger
    polls through aiobotocore, which moto does not intercept.
    """
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        params={"endpoint_instance_type": "ml.m5.large"},
    ) as dag:

        @task
        def build_endpoint_request(experiment: dict, model: dict, **context) -> dict:
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.endpoint_request(experiment, model, context)

        endpoint_request = build_endpoint_request(RUN.as_dict(), MODEL)
        create_endpoint = ResumableEndpointOperator(
            task_id="create_endpoint",
            config=endpoint_request,
            operation="create",
            aws_conn_id="aws_default",
            deferrable=False,
            check_interval=1,
        )

        @task
        def invoke_endpoint(endpoint: dict) -> dict:
            raise RuntimeError(f"endpoint {endpoint['Endpoint']['EndpointName']} answered nonsense")

        @task
        def delete_endpoint(endpoint_request: dict) -> dict:
            from ground_truth_pipeline.steps import deploy_step

            return deploy_step.delete_endpoint(endpoint_request)

        invoked = invoke_endpoint(create_endpoint.output)
        teardown = delete_endpoint(endpoint_request).as_teardown(setups=[endpoint_request, create_endpoint])
        create_endpoint >> invoked >> teardown
    return dag


def run_test(dag: DAG):
    """``dag.test()`` of a DAG defined here, once written to the metadata DB as the DAG processor would."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=None, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test()


def task_states(dag_run):
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def returned(dag_run, task_id):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key="return_value"
    )
    with create_session() as session:
        return XComModel.deserialize_value(session.scalars(query).one())


def endpoints_and_configs(sagemaker):
    endpoints = [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
    configs = [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
    return endpoints, configs


def test_the_mirror_is_wired_like_the_deploy_group(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    pipeline = bag.dags["ground_truth_object_detection"]
    mirror = endpoint_dag("endpoint_teardown_mirror")

    def shape(dag, prefix):
        tasks = {task_id: dag.get_task(prefix + task_id) for task_id in ENDPOINT_TASKS}

        def among(ids):
            return sorted(i.removeprefix(prefix) for i in ids if i.removeprefix(prefix) in ENDPOINT_TASKS)

        return {
            task_id: (
                type(t).__name__,
                t.is_setup,
                t.is_teardown,
                t.trigger_rule,
                among(t.upstream_task_ids),
                among(t.downstream_task_ids),
            )
            for task_id, t in tasks.items()
        }

    assert shape(mirror, "") == shape(pipeline, "deploy.")
    assert shape(mirror, "")["delete_endpoint"][1:4] == (False, True, TriggerRule.ALL_DONE_SETUP_SUCCESS)


def test_the_teardown_deletes_the_endpoint_when_a_task_after_it_fails(aws):
    create_model(aws)
    dag_run = run_test(endpoint_dag("endpoint_teardown_after_invoke_fails"))

    assert dag_run.state == "failed"
    assert task_states(dag_run) == {
        "build_endpoint_request": "success",
        "create_endpoint": "success",
        "invoke_endpoint": "failed",
        "delete_endpoint": "success",
    }
    endpoint = returned(dag_run, "create_endpoint")["Endpoint"]
    assert endpoint["EndpointName"] == RUN.resource_name("endpoint")
    assert endpoint["EndpointStatus"] == "InService"
    assert returned(dag_run, "delete_endpoint") == {
        "endpoint_deleted": True,
        "endpoint_configs_deleted": [RUN.resource_name("epc")],
    }
    assert endpoints_and_configs(aws) == ([], [])


def test_the_teardown_runs_when_the_endpoint_cannot_be_created(aws):
    # No model: CreateEndpointConfig is refused, so create_endpoint fails before anything exists.
    dag_run = run_test(endpoint_dag("endpoint_teardown_without_model"))

    assert dag_run.state == "failed"
    assert task_states(dag_run) == {
        "build_endpoint_request": "success",
        "create_endpoint": "failed",
        "invoke_endpoint": "upstream_failed",
        "delete_endpoint": "success",
    }
    assert returned(dag_run, "delete_endpoint") == {"endpoint_deleted": False, "endpoint_configs_deleted": []}
    assert endpoints_and_configs(aws) == ([], [])


def test_the_teardown_deletes_the_config_of_an_endpoint_that_failed_to_start(aws, monkeypatch):
    create_model(aws)

    def refuse(self, config, wait_for_completion=True, **kwargs):
        raise ClientError(
            {"Error": {"Code": "ResourceLimitExceeded", "Message": "no ml.m5.large for endpoints"}},
            "CreateEndpoint",
        )

    monkeypatch.setattr(SageMakerHook, "create_endpoint", refuse)
    dag_run = run_test(endpoint_dag("endpoint_teardown_after_create_endpoint_fails"))

    assert dag_run.state == "failed"
    assert task_states(dag_run)["create_endpoint"] == "failed"
    assert task_states(dag_run)["delete_endpoint"] == "success"
    assert returned(dag_run, "delete_endpoint") == {
        "endpoint_deleted": False,
        "endpoint_configs_deleted": [RUN.resource_name("epc")],
    }
    assert endpoints_and_configs(aws) == ([], [])
