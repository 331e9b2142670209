"""docker-compose.yaml and the Dockerfile agree with the local stack: no Docker daemon is needed to check
that the Airflow containers are given the stack's connection and the DAG options that ``local_aws env``
prints, that the stack's container serves the ports the connection names on every interface, and that the
seeding container reaches it by its service name."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from local_aws.config import LocalAwsConfig
from local_aws.environment import airflow_connection, dag_variables
from tests.local_aws.conftest import REPO_ROOT

STACK_SERVICE = "local-aws"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile").read_text()


def stack_config() -> LocalAwsConfig:
    """The stack as the other containers reach it: by service name, on the default ports."""
    return LocalAwsConfig(
        host=STACK_SERVICE,
        s3_port=8333,
        sagemaker_port=8334,
        moto_port=8335,
        portal_port=8336,
        region="us-east-1",
        portal_url="",
    )


def test_airflow_init_stores_the_connection_that_env_prints_for_the_stack_service(compose) -> None:
    init = compose["services"]["airflow-init"]
    stored = json.loads(init["environment"]["LOCAL_STACK_CONNECTION"])
    assert stored == airflow_connection(stack_config())
    script = init["command"][-1]
    assert 'airflow connections add aws_default --conn-json "$${LOCAL_STACK_CONNECTION}"' in script
    assert 'airflow variables set ground_truth_role_arn "$${LOCAL_STACK_ROLE_ARN}"' in script
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/\S+", init["environment"]["LOCAL_STACK_ROLE_ARN"])
    # An AIRFLOW_CONN_AWS_DEFAULT from .env (AWS) wins over the stored connection; empty, it is ignored.
    assert init["environment"]["AIRFLOW_CONN_AWS_DEFAULT"] == "${AIRFLOW_CONN_AWS_DEFAULT:-}"


def test_the_airflow_containers_get_the_dag_options_that_env_prints_for_the_stack(
    compose, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stack's container runs on its defaults: no LOCAL_AWS_* setting in its environment but where it
    # listens and where people's browsers find its portal.
    environment = set(compose["services"][STACK_SERVICE]["environment"])
    assert environment == {"LOCAL_AWS_BIND_HOST", "LOCAL_AWS_PORTAL_URL"}
    monkeypatch.delenv("LOCAL_AWS_AUTO_LABELING_MIN_OBJECTS", raising=False)
    defaults = {}
    for service in ("airflow-scheduler", "airflow-worker", "airflow-triggerer", "airflow-dag-processor"):
        environment = compose["services"][service]["environment"]
        for name in dag_variables(stack_config()):
            # ${NAME:-default}: the default when unset or empty; ${NAME-default}: when unset (empty: none).
            reference = re.fullmatch(rf"\$\{{{name}:?-(.*)\}}", environment[name])
            assert reference is not None, f"{service}: {name}={environment[name]}"
            defaults[name] = reference.group(1)
    assert defaults == dag_variables(stack_config())


def test_the_stack_container_serves_the_connections_ports_on_every_interface(compose, dockerfile) -> None:
    stack = compose["services"][STACK_SERVICE]
    config = stack_config()
    ports = {config.s3_port, config.sagemaker_port, config.moto_port, config.portal_port}
    published = {int(mapping.split(":")[-1]): mapping for mapping in stack["ports"]}
    assert set(published) == ports
    # The portal faces people: published on the host's loopback only, and reached there by their browsers.
    assert published[config.portal_port].startswith("127.0.0.1:")
    assert stack["environment"]["LOCAL_AWS_PORTAL_URL"] == f"http://localhost:{config.portal_port}"
    assert stack["command"] == ["python", "-m", "local_aws", "serve"]
    assert stack["environment"]["LOCAL_AWS_BIND_HOST"] == "0.0.0.0"
    assert stack["healthcheck"]["test"][-3:] == ["-m", "local_aws", "status"]
    exposed = re.search(r"^EXPOSE (.+)$", dockerfile, re.MULTILINE)
    assert exposed is not None and {int(port) for port in exposed.group(1).split()} == ports


def test_the_seeding_container_reaches_the_stack_by_name_and_shares_its_data(compose) -> None:
    services = compose["services"]
    seed, stack = services["local-aws-seed"], services[STACK_SERVICE]
    dag = (REPO_ROOT / "dags" / "ground_truth_object_detection.py").read_text()
    bucket_param = re.search(
        r'"bucket": Param\(\s*conf\.get\(CONFIG_SECTION, "bucket", fallback="([^"]+)"\)', dag
    )
    assert bucket_param is not None
    # The DAG's default bucket is there for its outputs.
    assert seed["command"] == ["python", "-m", "local_aws", "seed", "--bucket", bucket_param.group(1)]
    assert seed["environment"]["LOCAL_AWS_HOST"] == STACK_SERVICE
    assert seed["depends_on"][STACK_SERVICE]["condition"] == "service_healthy"
    # The reference index the simulated crowd reads lives in the data directory, beside S3's data.
    assert seed["volumes"] == stack["volumes"] == ["local-aws-data:/data"]


def test_every_build_target_is_a_stage_of_the_dockerfile(compose, dockerfile) -> None:
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.MULTILINE))
    targets = {service["build"]["target"] for service in compose["services"].values() if "build" in service}
    assert targets == {"airflow", "local-aws"} <= stages
    local_stage = dockerfile.split("AS local-aws", 1)[1]
    assert "requirements-local-aws.txt" in local_stage
    # The stack's image is the local_aws package without Airflow.
    assert "requirements.txt" not in local_stage.replace("requirements-local-aws.txt", "")
    assert "./local-aws[object-detection]" in local_stage
    assert "LOCAL_AWS_DATA_DIR=/data" in local_stage
