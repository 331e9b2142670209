import pytest

from ground_truth_pipeline.aws_clients import AwsClients


@pytest.fixture
def boto3_configuration(monkeypatch, tmp_path):
    """boto3's own configuration from the environment only: no config file, keys for a signer."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("endpoint_url", "expected"),
    [
        (None, "https://api.sagemaker.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:8334", "http://127.0.0.1:8334"),
    ],
)
def test_the_clients_go_where_the_configuration_says(boto3_configuration, endpoint_url, expected):
    boto3_configuration.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    if endpoint_url is not None:
        boto3_configuration.setenv("AWS_ENDPOINT_URL", endpoint_url)
    clients = AwsClients(conn_id=None)
    assert clients.sagemaker.meta.endpoint_url == expected
    assert clients.region == "eu-west-1"
