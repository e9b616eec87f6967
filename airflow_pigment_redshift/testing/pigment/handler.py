"""HTTP server and request handler of the Pigment import API emulator.

Every request goes through :meth:`PigmentRequestHandler._dispatch`, which routes it, turns
:class:`HttpError` into an error response, finishes reading the body and sends the response.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_pigment_redshift.testing.faults import FaultRule
from airflow_pigment_redshift.testing.pigment.configurations import ImportConfiguration
from airflow_pigment_redshift.testing.pigment.errors import (
    ERROR_STATUS,
    ErrorKind,
    HttpError,
)
from airflow_pigment_redshift.testing.pigment.processing import check_header, read_header
from airflow_pigment_redshift.testing.pigment.request_bodies import (
    BodyError,
    BodyTooLargeError,
    copy_body,
    discard_body,
    read_body,
)
from airflow_pigment_redshift.testing.pigment.service import ImportService

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator/"
PUSH_CONTENT_TYPES = ("text/csv", "application/octet-stream")
MAX_ADMIN_BODY_BYTES = 1024 * 1024
# Endpoint names that fault rules use as their target: "push" and "status".
_PUSH_PATH = re.compile(r"/api(/v1)?/import/push/csv", re.IGNORECASE)
_STATUS_PATH = re.compile(r"/api(/v1)?/import/(?P<import_id>[^/]+)/status", re.IGNORECASE)


@dataclass(frozen=True)
class _Response:
    status: HTTPStatus
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server that tracks its open connections so it can close them on stop.

    :param address: Host and port to bind.
    :param service: State and import processing of the emulator.
    :param error_bodies: Body text of each error kind.
    :param connection_timeout: Socket timeout in seconds for reads and idle keep-alive
        connections.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        service: ImportService,
        error_bodies: Mapping[ErrorKind, str],
        connection_timeout: float,
    ) -> None:
        self.service = service
        self.error_bodies = dict(error_bodies)
        self.connection_timeout = connection_timeout
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, PigmentRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host up with socket.getfqdn, which can send a DNS
        # query. The emulator binds a literal loopback address and needs no host name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection, including idle keep-alive ones."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # The client closed it already.

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("Unexpected error while serving a request from %s", client_address)


class PigmentRequestHandler(BaseHTTPRequestHandler):
    """Handler of one HTTP/1.1 connection to the emulator."""

    protocol_version = "HTTP/1.1"
    server_version = "PigmentImportApiEmulator"
    sys_version = ""
    # Headers and body are sent in separate writes. With Nagle's algorithm on, the body waits
    # for the client's delayed ACK: each httpx request took about 40 ms on Linux without this.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.connection_timeout
        super().setup()

    @property
    def _service(self) -> ImportService:
        return self.server.service

    def do_GET(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        """Handle one request from routing to the response.

        This is the only entry point for requests, so behaviour that applies to every
        endpoint (such as injected faults) belongs here.
        """
        self._body_read = False
        fault = self._injected_fault()
        if fault is not None and fault.fault == "drop_before":
            self.close_connection = True
            return
        if fault is not None and fault.fault == "delay":
            time.sleep(fault.delay_seconds)
        if fault is not None and fault.fault == "error":
            response = _Response(HTTPStatus(fault.status), fault.message.encode("utf-8"))
        else:
            try:
                response = self._route()
            except HttpError as error:
                response = self._error_response(error)
            except Exception:
                # A bug in the emulator must not look like a network failure to the client.
                logger.exception("Failed to handle %s %s", self.command, urlsplit(self.path).path)
                response = _Response(HTTPStatus.INTERNAL_SERVER_ERROR)
                self.close_connection = True
        self._finish_reading_body()
        if fault is not None and fault.fault == "drop_after":
            self.close_connection = True
            return
        if fault is not None and fault.fault == "slow_response":
            time.sleep(fault.delay_seconds)
        if fault is not None and fault.fault == "override" and response.status == HTTPStatus.OK:
            response = _json_response(HTTPStatus.OK, {**json.loads(response.body), **fault.fields})
        self._send(response)

    def _injected_fault(self) -> FaultRule | None:
        """Return the fault rule that fires for this request, if any; admin endpoints never fault."""
        split = urlsplit(self.path)
        if split.path.startswith(ADMIN_PREFIX):
            return None
        request: dict[str, Any] = {
            name.lower(): value for name, value in parse_qsl(split.query, keep_blank_values=True)
        }
        status = _STATUS_PATH.fullmatch(split.path)
        if status is not None:
            endpoint = "status"
            request["importid"] = status.group("import_id")
        elif _PUSH_PATH.fullmatch(split.path):
            endpoint = "push"
        else:
            endpoint = split.path
        return self._service.faults.fault_for(endpoint, request)

    def _route(self) -> _Response:
        split = urlsplit(self.path)
        path = split.path
        # Pigment's OpenAPI document is generated by ASP.NET, which binds query parameters
        # case-insensitively, so the emulator does too.
        query = {
            name.lower(): value
            for name, value in parse_qsl(split.query, keep_blank_values=True)
        }

        if not path.startswith(ADMIN_PREFIX):
            self._check_request_rate()

        path_matched = False
        for route in _ROUTES:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            path_matched = True
            if route.method != self.command:
                continue
            if route.requires_api_key:
                self._authenticate()
            return route.handle(self, query, **match.groupdict())

        if path_matched:
            raise HttpError(
                ErrorKind.METHOD_NOT_ALLOWED, f"{self.command} is not allowed on {path}"
            )
        raise HttpError(ErrorKind.NOT_FOUND, f"no endpoint at {path}")

    # Checks shared by the Pigment endpoints.

    def _check_request_rate(self) -> None:
        client_ip = self.client_address[0]
        limiter = self._service.request_limiter
        if limiter.acquire(client_ip) is None:
            raise HttpError(
                ErrorKind.REQUEST_RATE_EXCEEDED,
                f"client {client_ip} exceeded {limiter.limit} requests per "
                f"{limiter.window_seconds} s",
                limit=limiter.limit,
            )

    def _authenticate(self) -> None:
        authorization = self.headers.get("Authorization")
        if authorization is None:
            raise HttpError(ErrorKind.UNAUTHORIZED, "the Authorization header is missing")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise HttpError(
                ErrorKind.UNAUTHORIZED, "the Authorization header is not 'Bearer <API key>'"
            )
        if not self._service.is_valid_api_key(key.strip()):
            raise HttpError(ErrorKind.UNAUTHORIZED, "the API key is not one of the configured keys")

    def _require_configuration(self, query: Mapping[str, str]) -> ImportConfiguration:
        configuration_id = _parse_uuid(query.get("configurationid"), "configurationId")
        configuration = self._service.configuration(configuration_id)
        if configuration is None:
            raise HttpError(
                ErrorKind.CONFIGURATION_NOT_FOUND,
                f"no import configuration with id {configuration_id}",
            )
        return configuration

    # Pigment endpoints.

    def _handle_push(self, query: Mapping[str, str]) -> _Response:
        configuration = self._require_configuration(query)
        self._check_push_content_type()
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked and not self._service.accept_chunked_push:
            self.close_connection = True
            raise HttpError(
                ErrorKind.LENGTH_REQUIRED,
                "this server accepts a push only with a Content-Length header",
            )

        limiter = self._service.import_limiter
        window = limiter.acquire(configuration.id)
        if window is None:
            raise HttpError(
                ErrorKind.IMPORT_QUOTA_EXCEEDED,
                f"configuration {configuration.id} exceeded {limiter.limit} imports per "
                f"{limiter.window_seconds} s",
                limit=limiter.limit,
            )

        import_id, path = self._service.new_import_file()
        try:
            size_bytes = self._store_body(path)
            self._check_pushed_header(path, configuration)
        except BaseException:
            limiter.release(configuration.id, window)
            path.unlink(missing_ok=True)
            raise

        self._service.submit_import(import_id, configuration, path, size_bytes, chunked=chunked)
        return _json_response(HTTPStatus.OK, {"importId": import_id})

    def _handle_status(self, query: Mapping[str, str], import_id: str) -> _Response:
        detailed = _parse_bool(query.get("includeddetailedreport"), "includedDetailedReport")
        return self._status_response(import_id, detailed=detailed)

    def _handle_legacy_status(self, query: Mapping[str, str], import_id: str) -> _Response:
        return self._status_response(import_id, detailed=False)

    def _handle_trigger(self, query: Mapping[str, str]) -> _Response:
        configuration = self._require_configuration(query)
        raise HttpError(
            ErrorKind.TRIGGER_NOT_SUPPORTED,
            f"configuration {configuration.id} is a CSV push configuration, which cannot be "
            "triggered; the emulator has no connector-based configurations",
        )

    def _status_response(self, import_id: str, *, detailed: bool) -> _Response:
        canonical_id = _parse_uuid(import_id, "importId")
        report = self._service.status_report(canonical_id, detailed=detailed)
        if report is None:
            raise HttpError(ErrorKind.IMPORT_NOT_FOUND, f"no import with id {canonical_id}")
        return _json_response(HTTPStatus.OK, report)

    def _check_push_content_type(self) -> None:
        content_type = self.headers.get("Content-Type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in PUSH_CONTENT_TYPES:
            raise HttpError(
                ErrorKind.BAD_REQUEST,
                f"Content-Type {content_type!r} is not one of {list(PUSH_CONTENT_TYPES)}",
            )

    def _store_body(self, path: Path) -> int:
        """Stream the request body to ``path`` and return its size in bytes."""
        partial = path.with_name(path.name + ".part")
        self._body_read = True
        try:
            with open(partial, "wb") as file:
                size_bytes = copy_body(
                    self.rfile, self.headers, file, self._service.max_body_bytes
                )
        except BodyTooLargeError as error:
            partial.unlink(missing_ok=True)
            raise HttpError(ErrorKind.BODY_TOO_LARGE, str(error)) from error
        except BodyError as error:
            partial.unlink(missing_ok=True)
            self.close_connection = True
            raise HttpError(ErrorKind.BAD_REQUEST, str(error)) from error
        partial.replace(path)
        return size_bytes

    def _check_pushed_header(self, path: Path, configuration: ImportConfiguration) -> None:
        """Reject a push whose header is wrong when ``header_mismatch`` is ``"reject"``.

        A file without a header, or one that cannot be decoded, is accepted here and ends
        ``Failed`` during processing.
        """
        if configuration.header_mismatch != "reject":
            return
        try:
            header = read_header(path, configuration)
        except (UnicodeDecodeError, csv.Error):
            return
        if header is None:
            return
        error = check_header(header, configuration)
        if error is not None:
            raise HttpError(ErrorKind.HEADER_MISMATCH, error.description)

    # Admin endpoints, which exist only in the emulator.

    def _read_admin_json(self) -> Any | _Response:
        """Return the decoded JSON body of an admin request, or the 400 response to send instead."""
        self._body_read = True
        try:
            body = read_body(self.rfile, self.headers, MAX_ADMIN_BODY_BYTES)
        except BodyError as error:
            self.close_connection = True
            return _json_error(HTTPStatus.BAD_REQUEST, str(error))
        try:
            return json.loads(body)
        except json.JSONDecodeError as error:
            return _json_error(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {error}")

    def _handle_add_configuration(self, query: Mapping[str, str]) -> _Response:
        data = self._read_admin_json()
        if isinstance(data, _Response):
            return data
        try:
            configuration = ImportConfiguration.from_dict(data)
        except (TypeError, ValueError) as error:
            return _json_error(HTTPStatus.BAD_REQUEST, str(error))
        try:
            self._service.add_configuration(configuration)
        except ValueError as error:
            return _json_error(HTTPStatus.CONFLICT, str(error))
        logger.info(
            "Registered import configuration %s for block %s",
            configuration.id,
            configuration.block_name,
        )
        return _json_response(HTTPStatus.CREATED, configuration.to_dict())

    def _handle_list_configurations(self, query: Mapping[str, str]) -> _Response:
        configurations = [item.to_dict() for item in self._service.configurations()]
        return _json_response(HTTPStatus.OK, configurations)

    def _handle_list_imports(self, query: Mapping[str, str]) -> _Response:
        return _json_response(HTTPStatus.OK, self._service.ledger.entries())

    def _handle_list_blocks(self, query: Mapping[str, str]) -> _Response:
        return _json_response(HTTPStatus.OK, self._service.blocks.summaries())

    def _handle_add_fault(self, query: Mapping[str, str]) -> _Response:
        data = self._read_admin_json()
        if isinstance(data, _Response):
            return data
        try:
            rule = self._service.faults.add(FaultRule.from_dict(data))
        except (TypeError, ValueError) as error:
            return _json_error(HTTPStatus.BAD_REQUEST, str(error))
        return _json_response(HTTPStatus.CREATED, rule.to_dict())

    def _handle_list_faults(self, query: Mapping[str, str]) -> _Response:
        return _json_response(HTTPStatus.OK, self._service.faults.rules())

    def _handle_clear_faults(self, query: Mapping[str, str]) -> _Response:
        self._service.faults.clear()
        return _json_response(HTTPStatus.OK, [])

    # Responses.

    def _error_response(self, error: HttpError) -> _Response:
        status = ERROR_STATUS[error.kind]
        logger.info(
            "Rejected %s %s from %s with %s %s: %s",
            self.command,
            urlsplit(self.path).path,
            self.client_address[0],
            status.value,
            error.kind.value,
            error.detail,
        )
        body = self.server.error_bodies[error.kind]
        if error.limit is not None:
            body = body.replace("{limit}", str(error.limit))
        return _Response(status, body.encode("utf-8"))

    def _finish_reading_body(self) -> None:
        """Read the rest of an unread body, so that the connection can serve the next request."""
        if self._body_read:
            return
        self._body_read = True
        try:
            discard_body(self.rfile, self.headers)
        except BodyError as error:
            logger.debug("Closing the connection after an unreadable body: %s", error)
            self.close_connection = True

    def _send(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except OSError as error:
            logger.debug("Sending the response to %s failed: %s", self.client_address[0], error)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (name fixed by base)
        logger.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.info("%s %s", self.address_string(), format % args)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handle: Callable[..., _Response]
    requires_api_key: bool


def _api_route(method: str, path: str, handle: Callable[..., _Response]) -> _Route:
    # ASP.NET, which generated Pigment's OpenAPI document, matches paths case-insensitively.
    return _Route(method, re.compile(path, re.IGNORECASE), handle, requires_api_key=True)


def _admin_route(method: str, path: str, handle: Callable[..., _Response]) -> _Route:
    return _Route(method, re.compile(re.escape(path)), handle, requires_api_key=False)


_ROUTES = (
    _api_route("POST", r"/api/v1/import/push/csv", PigmentRequestHandler._handle_push),
    _api_route("POST", r"/api/import/push/csv", PigmentRequestHandler._handle_push),
    _api_route(
        "GET", r"/api/v1/import/(?P<import_id>[^/]+)/status", PigmentRequestHandler._handle_status
    ),
    _api_route(
        "GET",
        r"/api/import/(?P<import_id>[^/]+)/status",
        PigmentRequestHandler._handle_legacy_status,
    ),
    _api_route("POST", r"/api/v1/import/trigger", PigmentRequestHandler._handle_trigger),
    _admin_route(
        "POST", "/_emulator/configurations", PigmentRequestHandler._handle_add_configuration
    ),
    _admin_route(
        "GET", "/_emulator/configurations", PigmentRequestHandler._handle_list_configurations
    ),
    _admin_route("GET", "/_emulator/imports", PigmentRequestHandler._handle_list_imports),
    _admin_route("GET", "/_emulator/blocks", PigmentRequestHandler._handle_list_blocks),
    _admin_route("POST", "/_emulator/faults", PigmentRequestHandler._handle_add_fault),
    _admin_route("GET", "/_emulator/faults", PigmentRequestHandler._handle_list_faults),
    _admin_route("DELETE", "/_emulator/faults", PigmentRequestHandler._handle_clear_faults),
)


def _parse_uuid(value: str | None, name: str) -> str:
    if value is None or not value:
        raise HttpError(ErrorKind.BAD_REQUEST, f"the {name} parameter is missing")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HttpError(ErrorKind.BAD_REQUEST, f"{name} {value!r} is not a UUID") from None


def _parse_bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise HttpError(ErrorKind.BAD_REQUEST, f"{name} must be true or false, got {value!r}")
    return lowered == "true"


def _json_response(status: HTTPStatus, document: Any) -> _Response:
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return _Response(status, body, "application/json; charset=utf-8")


def _json_error(status: HTTPStatus, message: str) -> _Response:
    logger.info("Rejected admin request with %s: %s", status.value, message)
    return _json_response(status, {"error": message})
