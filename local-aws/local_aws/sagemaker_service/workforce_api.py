"""SageMaker's private workforce operations: CreateWorkforce, DescribeWorkforce, ListWorkforces,
DeleteWorkforce, CreateWorkteam, DescribeWorkteam, ListWorkteams, UpdateWorkteam, DeleteWorkteam.

As on AWS, an account has one private workforce per region: a second CreateWorkforce is
ResourceLimitExceeded, and CreateWorkteam without a WorkforceName puts the team in the account's workforce,
creating one named ``default`` when there is none. A workforce with workteams, or a workteam named by a
labeling job that has not ended (Initializing, InProgress, Stopping), cannot be deleted: ResourceInUse, as
is CreateWorkteam of a name taken in any case. botocore's model declares no not-found error for these
operations, so a missing workforce or workteam is a ValidationException naming its ARN, as for the
stack's other resources that SageMaker answers that way (models, endpoint configs).

The workforce signs its people in at the worker portal: ``SubDomain`` (of the workforce and of each team) is
the portal's host and port (``LocalAwsConfig.portal_endpoint`` without its scheme), so the sign-in URL is
``http://<SubDomain>``. A team's ``MemberDefinitions`` (Cognito user groups or OIDC groups) are kept and
echoed as given; the people who label for it are the local worker accounts added to it with
``python -m local_aws workers add NAME --team TEAM`` (``local_aws.workforce.accounts``). A workforce's
Cognito or OIDC configuration is echoed the same way (an OIDC client secret is neither kept nor echoed, as
AWS never echoes it); the portal signs people in with their local accounts whatever it says.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ApiError, ValidationError
from local_aws.sagemaker_service.job_api import list_page
from local_aws.sagemaker_service.protocol import Handler
from local_aws.workforce.teams import (
    InUse,
    LimitExceeded,
    NameInUse,
    NotFound,
    TeamsError,
    Workforce,
    WorkforceStore,
    Workteam,
    WorkteamStore,
    workforce_arn,
)

# The stores' refusals as SageMaker's error codes.
_ERROR_CODES: dict[type[TeamsError], str] = {
    NotFound: "ValidationException",
    NameInUse: "ResourceInUse",
    InUse: "ResourceInUse",
    LimitExceeded: "ResourceLimitExceeded",
}
# ListWorkforces' and ListWorkteams' SortBy, as ``list_page`` names the sort keys (CreateDate by default).
_SORT_KEYS = {"Name": "Name", "CreateDate": "CreationTime"}
# What a workforce keeps of its CreateWorkforce request, to echo.
_WORKFORCE_CONFIGS = ("CognitoConfig", "OidcConfig", "SourceIpConfig", "WorkforceVpcConfig", "IpAddressType")
_MEMBER_KINDS = ("CognitoMemberDefinition", "OidcMemberDefinition")


def _answering_as_sagemaker(handler: Handler) -> Handler:
    """``handler``, with the stores' refusals raised as SageMaker's errors."""

    @functools.wraps(handler)
    def handle(params: dict[str, Any]) -> Mapping[str, Any] | None:
        try:
            return handler(params)
        except TeamsError as error:
            raise ApiError(_ERROR_CODES[type(error)], str(error)) from error

    return handle


class WorkforceApi:
    def __init__(self, workforces: WorkforceStore, workteams: WorkteamStore, config: LocalAwsConfig) -> None:
        self.workforces = workforces
        self.workteams = workteams
        self.config = config

    def handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "CreateWorkforce": self.create_workforce,
            "DescribeWorkforce": self.describe_workforce,
            "ListWorkforces": self.list_workforces,
            "DeleteWorkforce": self.delete_workforce,
            "CreateWorkteam": self.create_workteam,
            "DescribeWorkteam": self.describe_workteam,
            "ListWorkteams": self.list_workteams,
            "UpdateWorkteam": self.update_workteam,
            "DeleteWorkteam": self.delete_workteam,
        }
        return {name: _answering_as_sagemaker(handler) for name, handler in handlers.items()}

    @property
    def sub_domain(self) -> str:
        """Where the portal answers, as SageMaker gives a private workforce's sign-in domain."""
        return urlsplit(self.config.portal_endpoint).netloc

    # Workforces.

    def create_workforce(self, params: dict[str, Any]) -> dict[str, Any]:
        if "CognitoConfig" in params and "OidcConfig" in params:
            raise ValidationError("Specify either CognitoConfig or OidcConfig, not both.")
        vpc = params.get("WorkforceVpcConfig")
        if vpc is not None and not {"VpcId", "SecurityGroupIds", "Subnets"} <= vpc.keys():
            raise ValidationError("WorkforceVpcConfig needs VpcId, SecurityGroupIds and Subnets together.")
        configs = {name: params[name] for name in _WORKFORCE_CONFIGS if name in params}
        if "OidcConfig" in configs:
            configs["OidcConfig"] = {
                name: value for name, value in configs["OidcConfig"].items() if name != "ClientSecret"
            }
        workforce = self.workforces.create(params["WorkforceName"], configs)
        return {"WorkforceArn": workforce.arn}

    def describe_workforce(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Workforce": self._workforce(self.workforces.get(params["WorkforceName"]))}

    def list_workforces(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.workforces.all(), _list_params(params))
        return {"Workforces": [self._workforce(workforce) for workforce in page], "NextToken": next_token}

    def delete_workforce(self, params: dict[str, Any]) -> None:
        self.workforces.delete(params["WorkforceName"])

    def _workforce(self, workforce: Workforce) -> dict[str, Any]:
        configs = workforce.request
        return {
            "WorkforceName": workforce.name,
            "WorkforceArn": workforce.arn,
            "LastUpdatedDate": workforce.last_updated_date,
            "SourceIpConfig": configs.get("SourceIpConfig", {"Cidrs": []}),
            "SubDomain": self.sub_domain,
            "CognitoConfig": configs.get("CognitoConfig"),
            "OidcConfig": configs.get("OidcConfig"),
            "CreateDate": workforce.create_date,
            "WorkforceVpcConfig": configs.get("WorkforceVpcConfig"),
            "Status": "Active",
            "IpAddressType": configs.get("IpAddressType", "ipv4"),
        }

    # Workteams.

    def create_workteam(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["WorkteamName"]
        if self.workteams.find(name) is not None:
            raise NameInUse(f'Workteam "{self.workteams.arn(name)}" already exists.')
        if "WorkforceName" in params:
            workforce = self.workforces.get(params["WorkforceName"])
        else:
            workforce = self.workforces.ensure()
        _check_member_definitions(params["MemberDefinitions"], workforce)
        workteam = self.workteams.create(
            name,
            workforce.name,
            params["Description"],
            params["MemberDefinitions"],
            params.get("NotificationConfiguration"),
            params.get("WorkerAccessConfiguration"),
        )
        return {"WorkteamArn": workteam.arn}

    def describe_workteam(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Workteam": self._workteam(self.workteams.get(params["WorkteamName"]))}

    def list_workteams(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.workteams.all(), _list_params(params))
        return {"Workteams": [self._workteam(workteam) for workteam in page], "NextToken": next_token}

    def update_workteam(self, params: dict[str, Any]) -> dict[str, Any]:
        workteam = self.workteams.get(params["WorkteamName"])
        if "MemberDefinitions" in params:
            workforce = self.workforces.get(workteam.workforce_name)
            _check_member_definitions(params["MemberDefinitions"], workforce)
        updated = self.workteams.update(
            workteam.name,
            {
                "description": params.get("Description"),
                "member_definitions": params.get("MemberDefinitions"),
                "notification_configuration": params.get("NotificationConfiguration"),
                "worker_access_configuration": params.get("WorkerAccessConfiguration"),
            },
        )
        return {"Workteam": self._workteam(updated)}

    def delete_workteam(self, params: dict[str, Any]) -> dict[str, Any]:
        self.workteams.delete(params["WorkteamName"])
        return {"Success": True}

    def _workteam(self, workteam: Workteam) -> dict[str, Any]:
        return {
            "WorkteamName": workteam.name,
            "MemberDefinitions": workteam.member_definitions,
            "WorkteamArn": workteam.arn,
            "WorkforceArn": workforce_arn(self.config, workteam.workforce_name),
            "Description": workteam.description,
            "SubDomain": self.sub_domain,
            "CreateDate": workteam.create_date,
            "LastUpdatedDate": workteam.last_updated_date,
            "NotificationConfiguration": workteam.notification_configuration,
            "WorkerAccessConfiguration": workteam.worker_access_configuration,
        }


def _list_params(params: dict[str, Any]) -> dict[str, Any]:
    return params | {"SortBy": _SORT_KEYS[params.get("SortBy", "CreateDate")]}


def _check_member_definitions(definitions: list[dict[str, Any]], workforce: Workforce) -> None:
    """Each definition is one kind (Cognito or OIDC), all the same, and the workforce's where it has one."""
    kinds = set()
    for index, definition in enumerate(definitions):
        given = [kind for kind in _MEMBER_KINDS if kind in definition]
        if len(given) != 1:
            raise ValidationError(
                f"MemberDefinitions[{index}] must have exactly one of CognitoMemberDefinition and"
                " OidcMemberDefinition."
            )
        kinds.update(given)
    if len(kinds) > 1:
        raise ValidationError("MemberDefinitions must all be Cognito or all be OIDC member definitions.")
    configs = workforce.request
    if "OidcConfig" in configs and "CognitoMemberDefinition" in kinds:
        raise ValidationError(f'Workforce "{workforce.name}" signs in with OIDC: use OidcMemberDefinition.')
    if "CognitoConfig" in configs and "OidcMemberDefinition" in kinds:
        raise ValidationError(
            f'Workforce "{workforce.name}" signs in with Cognito: use CognitoMemberDefinition.'
        )
