"""HTTP server that speaks AWS JSON 1.1 for the Redshift Data API service."""

from __future__ import annotations

import ipaddress
import json
import logging
import socketserver
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airflow_pigment_redshift.testing.faults import FaultRule
from airflow_pigment_redshift.testing.redshift_data.service import DROP_CONNECTION, RedshiftDataService

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
#: Admin path, outside the AWS API: POST a fault rule, GET the rules, DELETE them all.
FAULTS_PATH = "/_emulator/faults"


def validate_loopback_host(host: str) -> None:
    """Raise ValueError unless ``host`` is an IPv4 loopback address such as 127.0.0.1."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ValueError(
            f"host must be an IPv4 loopback address such as 127.0.0.1, got {host!r}; "
            "the emulator accepts unsigned requests and must not be reachable from other machines"
        )


class _RequestHandler(BaseHTTPRequestHandler):
    """Handles ``POST /`` requests; the ``X-Amz-Target`` header names the operation."""

    protocol_version = "HTTP/1.1"  # keeps connections alive between requests
    server_version = "RedshiftDataEmulator"
    timeout = 120  # seconds before an idle keep-alive connection is closed
    # Headers and body leave in one buffered write, with TCP_NODELAY, because a separate small
    # header segment meets the client's delayed ACK and stalls every response by about 40 ms.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _EmulatorHttpServer

    def do_POST(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if self.path == FAULTS_PATH:
            self._add_fault(body)
            return
        status, payload = self.server.service.handle(self.headers.get("X-Amz-Target"), body)
        if status == DROP_CONNECTION:
            self.close_connection = True
            return
        self._send(status, payload)

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        if self.path == FAULTS_PATH:
            self._send(200, json.dumps(self.server.service.faults.rules()).encode())
            return
        self._send(
            405,
            b'{"__type":"UnknownOperationException","message":"The Redshift Data API accepts only POST /"}',
        )

    def do_DELETE(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        if self.path != FAULTS_PATH:
            self._send(405, b'{"__type":"UnknownOperationException","message":"DELETE is only for faults"}')
            return
        self.server.service.faults.clear()
        self._send(200, b"[]")

    def _add_fault(self, body: bytes) -> None:
        try:
            rule = self.server.service.faults.add(FaultRule.from_dict(json.loads(body)))
        except (ValueError, TypeError) as error:
            self._send(400, json.dumps({"__type": "ValidationException", "message": str(error)}).encode())
            return
        self._send(201, json.dumps(rule.to_dict()).encode())

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by the base class
        log.debug("%s - " + format, self.address_string(), *args)


class _EmulatorHttpServer(ThreadingHTTPServer):
    """Threaded HTTP server: each connection gets a daemon thread, so a long poll blocks only its own connection."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: RedshiftDataService) -> None:
        self.service = service
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with socket.getfqdn, which can
        # trigger a DNS lookup; the loopback address is its own name here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


def create_http_server(host: str, port: int, service: RedshiftDataService) -> _EmulatorHttpServer:
    """Bind a threaded AWS JSON 1.1 server on a loopback address.

    :param host: IPv4 loopback address.
    :param port: TCP port, or 0 to let the operating system pick a free one.
    :param service: the service that handles each request.
    """
    validate_loopback_host(host)
    return _EmulatorHttpServer((host, port), service)
