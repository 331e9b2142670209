"""Shared fixtures: an offline AWS (moto) with dummy credentials, and Airflow configured for this repo."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Before anything imports airflow: its home (SQLite) inside the repo, this repo's dags and plugins.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import subprocess  # noqa: E402
import sys  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

REGION = "us-east-1"


@pytest.fixture
def aws_credentials(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mocked_aws(aws_credentials):
    with mock_aws():
        yield


@pytest.fixture
def s3_client(mocked_aws):
    return boto3.client("s3", region_name=REGION)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite in AIRFLOW_HOME), migrated once per session, for ``dag.test()``.

    The DAG bundles are registered too, as the DAG processor would at its first start: DAGs written to the
    database by a test refer to the ``dags-folder`` bundle.
    """
    migrate = [sys.executable, "-m", "airflow", "db", "migrate"]
    subprocess.run(migrate, check=True, capture_output=True, cwd=ROOT)
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
