"""The environment that points AWS clients at the local stack: what ``python -m local_aws env`` prints.

boto3, botocore and the AWS CLI read a service's endpoint from ``AWS_ENDPOINT_URL_<SERVICE ID>`` (the
service id of botocore's model, upper case, spaces as underscores: ``CloudWatch Logs`` →
``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``), so an unmodified program reaches S3 on SeaweedFS, SageMaker and Logs
on the local SageMaker service, and SNS/SQS/IAM/STS on moto, with the stack's dummy keys and region.
Airflow's Amazon provider reads the connection ``AIRFLOW_CONN_AWS_DEFAULT``: login/password are the keys,
``extra.endpoint_url`` the default endpoint (the local SageMaker service) and
``extra.service_config.<service>.endpoint_url`` the endpoints of the other services. The DAG's own options
(``AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__*``) tell it what the stack does differently from AWS.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.object_detection.hyperparameters import LOCAL_BASE_NETWORKS, LOCAL_MIN_IMAGE_SHAPE

# boto3 service name → the variable botocore reads its endpoint from.
ENDPOINT_VARIABLES = {
    "s3": "AWS_ENDPOINT_URL_S3",
    "sagemaker": "AWS_ENDPOINT_URL_SAGEMAKER",
    "sagemaker-runtime": "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    "logs": "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "sns": "AWS_ENDPOINT_URL_SNS",
    "sqs": "AWS_ENDPOINT_URL_SQS",
    "iam": "AWS_ENDPOINT_URL_IAM",
    "sts": "AWS_ENDPOINT_URL_STS",
}
# Services the Airflow connection sends somewhere else than its default endpoint (the SageMaker service).
_CONNECTION_SERVICES = ("s3", "sns", "sqs", "iam", "sts")
AIRFLOW_CONNECTION_VARIABLE = "AIRFLOW_CONN_AWS_DEFAULT"
# Where the people of private workteams sign in (DescribeWorkteam gives the same address as SubDomain).
PORTAL_URL_VARIABLE = "LOCAL_AWS_PORTAL_URL"
# The folder holding the ``local_aws`` package: on the services' PYTHONPATH, whatever their working directory.
PACKAGE_PARENT = Path(__file__).resolve().parents[1]


def client_variables(config: LocalAwsConfig) -> dict[str, str]:
    """Credentials, region and per-service endpoints for boto3 and the AWS CLI."""
    variables = {
        "AWS_ACCESS_KEY_ID": config.access_key_id,
        "AWS_SECRET_ACCESS_KEY": config.secret_access_key,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_REGION": config.region,
    }
    variables.update({name: config.endpoint_for(service) for service, name in ENDPOINT_VARIABLES.items()})
    return variables


def airflow_connection(config: LocalAwsConfig) -> dict[str, Any]:
    """The ``aws_default`` connection of the Amazon provider, in Airflow's JSON connection format."""
    return {
        "conn_type": "aws",
        "login": config.access_key_id,
        "password": config.secret_access_key,
        "extra": {
            "region_name": config.region,
            "endpoint_url": config.sagemaker_endpoint,
            "service_config": {
                service: {"endpoint_url": config.endpoint_for(service)} for service in _CONNECTION_SERVICES
            },
        },
    }


# The DAG's options ([ground_truth_object_detection] in Airflow's configuration, AIRFLOW__<SECTION>__<OPTION>)
# that the stack answers differently from AWS.
_DAG_OPTION_PREFIX = "AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__"
# The DAG asks SageMaker about its jobs every minute, as suits AWS; the stack's jobs take seconds.
DAG_STATUS_CHECK_VARIABLE = _DAG_OPTION_PREFIX + "STATUS_CHECK_INTERVAL_S"
DAG_STATUS_CHECK_INTERVAL_S = 5
# The DAG refuses automated labeling below AWS's minimum dataset (1,250 objects) unless told the stack's.
DAG_AUTO_LABELING_MIN_VARIABLE = _DAG_OPTION_PREFIX + "AUTO_LABELING_MIN_IMAGES"
# The DAG admits AWS's base networks only, unless told the ones the stack trains beyond them (for CPUs) and
# the smallest image_shape those take.
DAG_EXTRA_BASE_NETWORKS_VARIABLE = _DAG_OPTION_PREFIX + "EXTRA_BASE_NETWORKS"
DAG_EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_VARIABLE = _DAG_OPTION_PREFIX + "EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE"


def dag_variables(config: LocalAwsConfig) -> dict[str, str]:
    """The DAG's options that fit the stack: its poll interval, the stack's minimum for automated labeling,
    and the base networks the stack's object-detection algorithm trains beyond AWS's, with their smallest
    image_shape (from ``local_aws.object_detection.hyperparameters``, where the stack's rules live)."""
    return {
        DAG_STATUS_CHECK_VARIABLE: str(DAG_STATUS_CHECK_INTERVAL_S),
        DAG_AUTO_LABELING_MIN_VARIABLE: str(config.auto_labeling_min_objects),
        DAG_EXTRA_BASE_NETWORKS_VARIABLE: ",".join(LOCAL_BASE_NETWORKS),
        DAG_EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_VARIABLE: str(LOCAL_MIN_IMAGE_SHAPE),
    }


def stack_variables(config: LocalAwsConfig) -> dict[str, str]:
    """Everything ``env`` prints: the client variables, the Airflow connection, the DAG's options and the
    worker portal's address (where private workteams sign in)."""
    return {
        **client_variables(config),
        AIRFLOW_CONNECTION_VARIABLE: json.dumps(airflow_connection(config), separators=(",", ":")),
        **dag_variables(config),
        PORTAL_URL_VARIABLE: config.portal_endpoint,
    }


def config_variables(config: LocalAwsConfig) -> dict[str, str]:
    """The ``LOCAL_AWS_*`` variables that make another process build the same ``LocalAwsConfig``."""
    return {
        "LOCAL_AWS_DATA_DIR": str(config.data_dir),
        "LOCAL_AWS_S3_PORT": str(config.s3_port),
        "LOCAL_AWS_SEAWEED_MASTER_PORT": str(config.seaweed_master_port),
        "LOCAL_AWS_SEAWEED_VOLUME_PORT": str(config.seaweed_volume_port),
        "LOCAL_AWS_SEAWEED_FILER_PORT": str(config.seaweed_filer_port),
        "LOCAL_AWS_SAGEMAKER_PORT": str(config.sagemaker_port),
        "LOCAL_AWS_MOTO_PORT": str(config.moto_port),
        "LOCAL_AWS_PORTAL_PORT": str(config.portal_port),
        "LOCAL_AWS_PORTAL_URL": config.portal_url,
        "LOCAL_AWS_HOST": config.host,
        "LOCAL_AWS_BIND_HOST": config.bind_host,
        "LOCAL_AWS_REGION": config.region,
        "LOCAL_AWS_AUTO_LABELING_MIN_OBJECTS": str(config.auto_labeling_min_objects),
        "LOCAL_AWS_AUTO_LABELING_HYPERPARAMETERS": json.dumps(dict(config.auto_labeling_hyperparameters)),
    }


def service_variables(config: LocalAwsConfig) -> dict[str, str]:
    """What the stack's processes get on top of the caller's environment: the same config, this package."""
    python_path = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")]))
    return {**config_variables(config), "PYTHONPATH": python_path}


def export_lines(variables: Mapping[str, str]) -> str:
    """POSIX shell ``export`` lines, each value quoted, for ``eval "$(python -m local_aws env)"``."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())
