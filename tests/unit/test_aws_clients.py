import pytest

from ground_truth_pipeline.aws_clients import AwsClients


@pytest.mark.parametrize(
    ("endpoint_url", "is_local_stack"),
    [
        (None, False),
        ("https://api.sagemaker.eu-west-1.amazonaws.com", False),
        ("http://127.0.0.1:8334", True),
        ("http://localstack:8334", True),
    ],
)
def test_the_local_stack_is_told_by_the_sagemaker_endpoint(monkeypatch, endpoint_url, is_local_stack):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    if endpoint_url is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url)
    assert AwsClients(conn_id=None).is_local_stack is is_local_stack
