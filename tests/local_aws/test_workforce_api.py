"""The private workforce and workteam operations through real boto3 clients against the embedded service.

Each test gets a service of its own (a workforce is one per account and region, so tests would see each
other's); a labeling job run by the fake engine holds a workteam while it waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.embedded import EmbeddedService
from local_aws.workforce.teams import WORKTEAM_NAME
from tests.local_aws.fake_engines import FAKE_LABELING, TIMEOUT_S, labeling_request, release
from tests.local_aws.ports import free_port

COGNITO = {"UserPool": "us-east-1_abcDEF123", "UserGroup": "labelers", "ClientId": "client-1"}
OIDC_CONFIG = {
    "ClientId": "oidc-client",
    "ClientSecret": "oidc-secret-never-echoed",
    "Issuer": "https://idp.example.com",
    "AuthorizationEndpoint": "https://idp.example.com/authorize",
    "TokenEndpoint": "https://idp.example.com/token",
    "UserInfoEndpoint": "https://idp.example.com/userinfo",
    "LogoutEndpoint": "https://idp.example.com/logout",
    "JwksUri": "https://idp.example.com/jwks",
}


@pytest.fixture
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAwsConfig]:
    config = LocalAwsConfig(
        data_dir=tmp_path_factory.mktemp("stack"), sagemaker_port=free_port(), portal_port=free_port()
    )
    with EmbeddedService(config, engines={"labeling": FAKE_LABELING}, poll_interval_s=0.05):
        yield config


@pytest.fixture
def sagemaker(config: LocalAwsConfig) -> Any:
    return config.boto3_client("sagemaker")


def error_of(call: Callable[[], Any]) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


def create_team(sagemaker: Any, name: str, **extra: Any) -> str:
    return sagemaker.create_workteam(
        WorkteamName=name,
        MemberDefinitions=[{"CognitoMemberDefinition": COGNITO}],
        Description=f"The {name} team",
        **extra,
    )["WorkteamArn"]


def test_the_workteam_name_pattern_is_sagemakers() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert WORKTEAM_NAME.pattern == model.shape_for("WorkteamName").metadata["pattern"]


def test_a_workforce_is_described_with_the_portal_as_its_sub_domain(config, sagemaker):
    created_at = datetime.now(UTC)
    arn = sagemaker.create_workforce(
        WorkforceName="Labelers",
        CognitoConfig={"UserPool": COGNITO["UserPool"], "ClientId": COGNITO["ClientId"]},
        SourceIpConfig={"Cidrs": ["10.0.0.0/16"]},
    )["WorkforceArn"]

    workforce = sagemaker.describe_workforce(WorkforceName="labelers")["Workforce"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:workforce/labelers"
    assert workforce["WorkforceName"] == "Labelers"
    assert workforce["WorkforceArn"] == arn
    assert workforce["SubDomain"] == f"127.0.0.1:{config.portal_port}"
    assert workforce["Status"] == "Active"
    assert workforce["CognitoConfig"] == {"UserPool": COGNITO["UserPool"], "ClientId": COGNITO["ClientId"]}
    assert workforce["SourceIpConfig"] == {"Cidrs": ["10.0.0.0/16"]}
    assert workforce["IpAddressType"] == "ipv4"
    assert abs(workforce["CreateDate"] - created_at) < timedelta(seconds=5)
    assert sagemaker.list_workforces()["Workforces"] == [workforce]


def test_an_oidc_client_secret_is_never_echoed(sagemaker):
    sagemaker.create_workforce(WorkforceName="oidc", OidcConfig=OIDC_CONFIG)

    echoed = sagemaker.describe_workforce(WorkforceName="oidc")["Workforce"]["OidcConfig"]
    assert echoed == {name: value for name, value in OIDC_CONFIG.items() if name != "ClientSecret"}


def test_an_account_has_one_workforce_per_region(sagemaker):
    sagemaker.create_workforce(WorkforceName="first")

    error = error_of(lambda: sagemaker.create_workforce(WorkforceName="second"))
    assert error["Code"] == "ResourceLimitExceeded"
    assert '"first"' in error["Message"]


def test_a_missing_workforce_or_workteam_is_a_validation_exception_naming_its_arn(sagemaker):
    for call, arn in [
        (
            lambda: sagemaker.describe_workforce(WorkforceName="nowhere"),
            "arn:aws:sagemaker:us-east-1:123456789012:workforce/nowhere",
        ),
        (
            lambda: sagemaker.delete_workforce(WorkforceName="nowhere"),
            "arn:aws:sagemaker:us-east-1:123456789012:workforce/nowhere",
        ),
        (
            lambda: sagemaker.describe_workteam(WorkteamName="Nobody"),
            "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/nobody",
        ),
        (
            lambda: sagemaker.update_workteam(WorkteamName="nobody", Description="x"),
            "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/nobody",
        ),
        (
            lambda: sagemaker.delete_workteam(WorkteamName="nobody"),
            "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/nobody",
        ),
    ]:
        error = error_of(call)
        assert error["Code"] == "ValidationException"
        assert arn in error["Message"]


def test_a_workteam_without_a_workforce_name_creates_the_default_workforce(config, sagemaker):
    arn = create_team(
        sagemaker,
        "Birders",
        NotificationConfiguration={"NotificationTopicArn": "arn:aws:sns:us-east-1:123456789012:labeling"},
    )

    team = sagemaker.describe_workteam(WorkteamName="birders")["Workteam"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/birders"
    assert team["WorkteamName"] == "Birders"
    assert team["WorkteamArn"] == arn
    assert team["WorkforceArn"] == "arn:aws:sagemaker:us-east-1:123456789012:workforce/default"
    assert team["MemberDefinitions"] == [{"CognitoMemberDefinition": COGNITO}]
    assert team["Description"] == "The Birders team"
    assert team["SubDomain"] == f"127.0.0.1:{config.portal_port}"
    assert team["NotificationConfiguration"] == {
        "NotificationTopicArn": "arn:aws:sns:us-east-1:123456789012:labeling"
    }
    assert [w["WorkforceName"] for w in sagemaker.list_workforces()["Workforces"]] == ["default"]
    # The next team joins the same workforce.
    create_team(sagemaker, "Owlers")
    assert len(sagemaker.list_workforces()["Workforces"]) == 1


def test_a_workteam_joins_a_named_workforce_only_if_it_exists(sagemaker):
    sagemaker.create_workforce(WorkforceName="crew")
    create_team(sagemaker, "in-crew", WorkforceName="crew")
    assert sagemaker.describe_workteam(WorkteamName="in-crew")["Workteam"]["WorkforceArn"].endswith(
        ":workforce/crew"
    )

    error = error_of(lambda: create_team(sagemaker, "elsewhere", WorkforceName="other"))
    assert error["Code"] == "ValidationException"
    assert "workforce/other" in error["Message"]


def test_a_workteam_name_is_taken_in_any_case(sagemaker):
    arn = create_team(sagemaker, "Birders")

    error = error_of(lambda: create_team(sagemaker, "BIRDERS"))
    assert error["Code"] == "ResourceInUse"
    assert arn in error["Message"]


def test_member_definitions_are_one_kind_and_the_workforces(sagemaker):
    sagemaker.create_workforce(WorkforceName="oidc", OidcConfig=OIDC_CONFIG)
    oidc = {"OidcMemberDefinition": {"Groups": ["labelers"]}}
    cognito = {"CognitoMemberDefinition": COGNITO}

    mixed = error_of(
        lambda: sagemaker.create_workteam(
            WorkteamName="mixed", MemberDefinitions=[oidc, cognito], Description="d"
        )
    )
    wrong_kind = error_of(
        lambda: sagemaker.create_workteam(
            WorkteamName="cognito", MemberDefinitions=[cognito], Description="d"
        )
    )
    assert mixed["Code"] == wrong_kind["Code"] == "ValidationException"
    assert "all be Cognito or all be OIDC" in mixed["Message"]
    assert "OidcMemberDefinition" in wrong_kind["Message"]
    sagemaker.create_workteam(WorkteamName="oidc-team", MemberDefinitions=[oidc], Description="d")
    assert sagemaker.describe_workteam(WorkteamName="oidc-team")["Workteam"]["MemberDefinitions"] == [oidc]


def test_update_replaces_what_it_names(sagemaker):
    create_team(sagemaker, "Birders")
    before = sagemaker.describe_workteam(WorkteamName="Birders")["Workteam"]
    time.sleep(0.01)
    other_group = {"CognitoMemberDefinition": COGNITO | {"UserGroup": "experts"}}

    updated = sagemaker.update_workteam(
        WorkteamName="birders", Description="Experts only", MemberDefinitions=[other_group]
    )["Workteam"]
    assert updated["Description"] == "Experts only"
    assert updated["MemberDefinitions"] == [other_group]
    assert updated["CreateDate"] == before["CreateDate"]
    assert updated["LastUpdatedDate"] > before["LastUpdatedDate"]
    assert sagemaker.describe_workteam(WorkteamName="Birders")["Workteam"] == updated


def test_a_workforce_with_workteams_is_not_deleted(sagemaker):
    create_team(sagemaker, "Birders")

    error = error_of(lambda: sagemaker.delete_workforce(WorkforceName="default"))
    assert error["Code"] == "ResourceInUse"
    assert "Birders" in error["Message"]
    assert sagemaker.delete_workteam(WorkteamName="Birders")["Success"] is True
    sagemaker.delete_workforce(WorkforceName="default")
    assert sagemaker.list_workforces()["Workforces"] == []


def test_a_workteam_is_not_deleted_while_a_labeling_job_uses_it(config, sagemaker):
    arn = create_team(sagemaker, "Birders")
    request = labeling_request("birds-private", mode="wait")
    request["HumanTaskConfig"]["WorkteamArn"] = arn
    sagemaker.create_labeling_job(**request)

    error = error_of(lambda: sagemaker.delete_workteam(WorkteamName="birders"))
    assert error["Code"] == "ResourceInUse"
    assert "birds-private" in error["Message"]
    release(config, "birds-private")
    deadline = time.monotonic() + TIMEOUT_S
    while (
        sagemaker.describe_labeling_job(LabelingJobName="birds-private")["LabelingJobStatus"] != "Completed"
    ):
        assert time.monotonic() < deadline, "the labeling job did not complete"
        time.sleep(0.05)
    assert sagemaker.delete_workteam(WorkteamName="birders")["Success"] is True
    assert error_of(lambda: sagemaker.describe_workteam(WorkteamName="birders"))["Code"] == (
        "ValidationException"
    )


def test_list_workteams_pages_sorts_and_filters(sagemaker):
    names = ["delta", "Alpha", "charlie", "bravo", "alpha-two"]
    for name in names:
        create_team(sagemaker, name)
        time.sleep(0.005)  # distinct creation times

    def listed(**params: Any) -> list[str]:
        teams, token = [], None
        while True:
            page = sagemaker.list_workteams(**params, **({"NextToken": token} if token else {}))
            assert len(page["Workteams"]) <= params.get("MaxResults", 10)
            teams += [team["WorkteamName"] for team in page["Workteams"]]
            token = page.get("NextToken")
            if token is None:
                return teams

    assert listed() == names
    assert listed(MaxResults=2) == names
    assert listed(SortBy="Name", MaxResults=2) == ["Alpha", "alpha-two", "bravo", "charlie", "delta"]
    assert listed(SortBy="CreateDate", SortOrder="Descending", MaxResults=3) == names[::-1]
    assert listed(NameContains="ALPHA") == ["Alpha", "alpha-two"]
    paginated = sagemaker.get_paginator("list_workteams").paginate(PaginationConfig={"PageSize": 2})
    assert [team["WorkteamName"] for page in paginated for team in page["Workteams"]] == names

    error = error_of(lambda: sagemaker.list_workteams(SortBy="Name", NextToken=_first_token(sagemaker)))
    assert error["Code"] == "ValidationException"


def _first_token(sagemaker: Any) -> str:
    """A token of a CreateDate-ordered listing (not valid for a Name-ordered one)."""
    return sagemaker.list_workteams(MaxResults=1)["NextToken"]


def test_list_workforces_pages_too(sagemaker):
    sagemaker.create_workforce(WorkforceName="only")

    first = sagemaker.list_workforces(MaxResults=1, SortBy="Name", NameContains="onl")
    assert [w["WorkforceName"] for w in first["Workforces"]] == ["only"]
    assert "NextToken" not in first
    assert sagemaker.list_workforces(NameContains="other")["Workforces"] == []
