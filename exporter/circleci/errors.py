"""Errors raised by the CircleCI client.

Every error names the API operation (the OpenAPI operationId) and the cause on one line. The client
redacts the token from any text it puts into an error, so `str(error)` is safe to log.
"""


class CircleCIError(Exception):
    """Base class of every error the CircleCI client raises."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"{operation}: {detail}")


class ApiStatusError(CircleCIError):
    """CircleCI answered with an HTTP error status (after retries, for retryable ones)."""

    def __init__(self, operation: str, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(operation, self._describe(status, message))

    @staticmethod
    def _describe(status: int, message: str) -> str:
        return f"HTTP {status}: {message}" if message else f"HTTP {status}"


class TokenRefusedError(ApiStatusError):
    """HTTP 401: the API token is missing, invalid or revoked."""

    @staticmethod
    def _describe(status: int, message: str) -> str:
        return f"CircleCI refused the API token (HTTP {status}): {message or 'no message'}"


class ForbiddenError(ApiStatusError):
    """HTTP 403: the token is valid but may not see this resource."""


class NotFoundError(ApiStatusError):
    """HTTP 404: an unknown resource, or one the token's user may not see (same answer for both)."""


class MalformedResponseError(CircleCIError):
    """A 2xx response that is not JSON or does not have the documented shape."""


class ResponseTooLargeError(CircleCIError):
    """The response body was larger than `api.max_response_bytes`; it was not read further."""


class TransportFailedError(CircleCIError):
    """Timeouts, deadlines or connection errors persisted through every retry."""


class PaginationLoopError(CircleCIError):
    """The API handed back a page token it had already given, which would page forever."""
