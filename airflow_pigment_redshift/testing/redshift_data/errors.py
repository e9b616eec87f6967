"""Errors that the emulator returns as AWS JSON 1.1 error responses."""

from __future__ import annotations


class DataApiError(Exception):
    """An API error that becomes the body ``{"__type": code, "message": message}``.

    botocore reads ``__type`` as the error code of the ``ClientError`` it raises.

    :param code: AWS error code, for example ``ValidationException``.
    :param message: human-readable error text.
    :param http_status: HTTP status of the response: 400 for client errors, 500 for server faults.
    """

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def validation_error(message: str) -> DataApiError:
    """Build a ``ValidationException`` with the given text."""
    return DataApiError("ValidationException", message)


def constraint_error(value: object, member: str, constraint: str) -> DataApiError:
    """Build a ``ValidationException`` in the wording AWS uses for service-model constraint violations."""
    return validation_error(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )


def statement_not_found() -> DataApiError:
    """Build the ``ResourceNotFoundException`` for an unknown or expired statement id."""
    # NOTE: "Query does not exist." is the text moto uses; the real service text is believed identical but unverified.
    return DataApiError("ResourceNotFoundException", "Query does not exist.")
