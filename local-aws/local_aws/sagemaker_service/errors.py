"""Errors the service answers with, in AWS's JSON-protocol shape: ``{"__type": <code>, "message": <text>}``.

botocore reads the code from ``__type`` and the text from ``message``, so boto3 raises ``ClientError`` with
``Error.Code`` equal to the code. Each service has its own code for a request that breaks the model's
constraints: SageMaker says ``ValidationException``, CloudWatch Logs ``InvalidParameterException``.
"""

from __future__ import annotations


class ApiError(Exception):
    """A client-visible error: an AWS error code, a message, an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


class ValidationError(ApiError):
    """SageMaker's answer to a request that is malformed or asks for something the stack cannot do."""

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


class ResourceNotFound(ApiError):
    """SageMaker's code for a missing job (botocore's model names the shape ``ResourceNotFound``)."""

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFound", message)


class ResourceInUse(ApiError):
    """SageMaker's code for a name that is taken."""

    def __init__(self, message: str) -> None:
        super().__init__("ResourceInUse", message)


class LogsInvalidParameter(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterException", message)


class LogsResourceNotFound(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class LogsResourceAlreadyExists(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceAlreadyExistsException", message)
