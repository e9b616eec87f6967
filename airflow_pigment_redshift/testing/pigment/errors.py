"""HTTP error responses of the Pigment import API emulator.

Pigment declares no schema for error bodies, and example collections show empty ``text/plain``
bodies, so every error body is empty by default. The exceptions are the two texts that Pigment's
OpenAPI document gives: the 404 of the status endpoint and the 429 of the per-configuration import
quota. Each body can be replaced through the emulator's ``error_bodies`` argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from http import HTTPStatus


class ErrorKind(StrEnum):
    """Kinds of error response, used as keys of ``error_bodies``."""

    BAD_REQUEST = "bad_request"
    BODY_TOO_LARGE = "body_too_large"
    HEADER_MISMATCH = "header_mismatch"
    TRIGGER_NOT_SUPPORTED = "trigger_not_supported"
    UNAUTHORIZED = "unauthorized"
    CONFIGURATION_NOT_FOUND = "configuration_not_found"
    IMPORT_NOT_FOUND = "import_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    IMPORT_QUOTA_EXCEEDED = "import_quota_exceeded"
    REQUEST_RATE_EXCEEDED = "request_rate_exceeded"
    LENGTH_REQUIRED = "length_required"


ERROR_STATUS: dict[ErrorKind, HTTPStatus] = {
    ErrorKind.BAD_REQUEST: HTTPStatus.BAD_REQUEST,
    ErrorKind.BODY_TOO_LARGE: HTTPStatus.BAD_REQUEST,
    ErrorKind.HEADER_MISMATCH: HTTPStatus.BAD_REQUEST,
    ErrorKind.TRIGGER_NOT_SUPPORTED: HTTPStatus.BAD_REQUEST,
    ErrorKind.UNAUTHORIZED: HTTPStatus.UNAUTHORIZED,
    ErrorKind.CONFIGURATION_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorKind.IMPORT_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorKind.NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorKind.METHOD_NOT_ALLOWED: HTTPStatus.METHOD_NOT_ALLOWED,
    ErrorKind.IMPORT_QUOTA_EXCEEDED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorKind.REQUEST_RATE_EXCEEDED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorKind.LENGTH_REQUIRED: HTTPStatus.LENGTH_REQUIRED,
}

# ``{limit}`` in a body is replaced by the limit of the rate limit that was exceeded.
DEFAULT_ERROR_BODIES: dict[ErrorKind, str] = {
    ErrorKind.IMPORT_NOT_FOUND: "Status with the specified importId was not found",
    ErrorKind.IMPORT_QUOTA_EXCEEDED: (
        "Maximum number of reports per configuration per hour exceeded, maximum: {limit}."
    ),
}


class HttpError(Exception):
    """Error that the request handler turns into an error response.

    :param kind: Kind of error, which selects the status code and the body.
    :param detail: Explanation for the emulator's log. It is never sent to the client.
    :param limit: Limit that was exceeded, substituted for ``{limit}`` in the body.
    """

    def __init__(self, kind: ErrorKind, detail: str, *, limit: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.limit = limit


def resolve_error_bodies(overrides: Mapping[str, str] | None) -> dict[ErrorKind, str]:
    """Merge user-supplied error bodies over the defaults.

    :param overrides: Error kind name (see :class:`ErrorKind`) to body text.
    :raises ValueError: when a key is not an error kind.
    """
    bodies = {kind: DEFAULT_ERROR_BODIES.get(kind, "") for kind in ErrorKind}
    for name, body in (overrides or {}).items():
        try:
            kind = ErrorKind(name)
        except ValueError:
            raise ValueError(
                f"unknown error kind {name!r} in error_bodies; valid kinds are "
                f"{[kind.value for kind in ErrorKind]}"
            ) from None
        bodies[kind] = body
    return bodies
