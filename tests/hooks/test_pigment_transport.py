"""Where the Pigment hook sends the Import API key: TLS settings and redirects."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_pigment_redshift.exceptions import PigmentRequestError
from airflow_pigment_redshift.hooks.pigment import PigmentHook, tls_verify_setting
from tests.conftest import LINE_ITEMS_CONFIGURATION_ID
from tests.helpers import RecordingServer, serve

API_KEY = "pigment-key-for-transport-tests"


@pytest.fixture
def servers() -> Iterator[list[RecordingServer]]:
    started: list[RecordingServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def use_connection(monkeypatch: pytest.MonkeyPatch, base_url: str, **extra: object) -> None:
    connection = {"conn_type": "pigment", "password": API_KEY, "extra": {"base_url": base_url, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_DEFAULT", json.dumps(connection))


def test_redirect_not_followed_with_key(monkeypatch, servers, tmp_path):
    elsewhere = serve(200, {"Content-Type": "application/json"}, b'{"importId": "x"}')
    redirecting = serve(307, {"Location": f"{elsewhere.url}/collect"})
    servers += [elsewhere, redirecting]
    use_connection(monkeypatch, redirecting.url)
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("a\n1\n")

    with pytest.raises(PigmentRequestError, match="redirected") as raised:
        PigmentHook().push_csv(LINE_ITEMS_CONFIGURATION_ID, csv_path)

    assert f"{elsewhere.url}/collect" in str(raised.value)
    assert raised.value.status_code == 307
    assert len(redirecting.seen) == 1
    assert elsewhere.seen == []


def test_status_redirect_not_followed(monkeypatch, servers):
    elsewhere = serve(200, {"Content-Type": "application/json"}, b"{}")
    redirecting = serve(302, {"Location": f"{elsewhere.url}/status"})
    servers += [elsewhere, redirecting]
    use_connection(monkeypatch, redirecting.url)

    with pytest.raises(PigmentRequestError, match="redirected"):
        PigmentHook().get_import_status("6f1c3e1a-1111-4a2b-8c3d-000000000001")

    assert elsewhere.seen == []


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"importId": null}', b'{"importId": "../../admin"}', b"[]"],
    ids=["not-json", "empty-object", "null-id", "path-id", "list"],
)
def test_push_answer_without_import_id(monkeypatch, servers, tmp_path, body):
    server = serve(200, {"Content-Type": "application/json"}, body)
    servers.append(server)
    use_connection(monkeypatch, server.url)
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("a\n1\n")

    with pytest.raises(PigmentRequestError, match="no valid importId") as raised:
        PigmentHook().push_csv(LINE_ITEMS_CONFIGURATION_ID, csv_path)

    assert body.decode() in str(raised.value)
    assert LINE_ITEMS_CONFIGURATION_ID in str(raised.value)
    assert API_KEY not in str(raised.value)


def test_tls_verification_on_by_default(monkeypatch):
    use_connection(monkeypatch, "https://pigment.app")

    assert PigmentHook().settings.verify is True


def test_ca_bundle_from_connection(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    use_connection(monkeypatch, "https://pigment.example", verify=str(bundle))

    assert PigmentHook().settings.verify == str(bundle)


def test_ca_bundle_loaded_into_client(monkeypatch):
    import certifi

    use_connection(monkeypatch, "https://pigment.example", verify=certifi.where())

    with PigmentHook().get_client() as client:
        assert client.base_url.host == "pigment.example"


def test_invalid_ca_bundle_rejected(monkeypatch, tmp_path):
    bundle = tmp_path / "not-a-certificate.pem"
    bundle.write_text("not a certificate\n")
    use_connection(monkeypatch, "https://pigment.example", verify=str(bundle))

    with pytest.raises(AirflowException, match="not-a-certificate.pem"):
        PigmentHook().get_client()


def test_missing_ca_bundle_rejected(monkeypatch, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    use_connection(monkeypatch, "https://pigment.example", verify=str(missing))

    with pytest.raises(AirflowException, match="no-such-ca.pem"):
        PigmentHook().settings


def test_verify_off_logged_as_warning(monkeypatch, capsys):
    use_connection(monkeypatch, "https://pigment.example")
    hook = PigmentHook(verify=False)

    hook.get_client().close()

    output = capsys.readouterr().out
    assert "TLS certificate verification is off" in output
    assert "warning" in output
    assert API_KEY not in output


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("true", True), ("False", False)]
)
def test_tls_verify_setting_values(value, expected):
    assert tls_verify_setting(value) is expected


@pytest.mark.parametrize("value", ["", "   ", 1, None, "/no/such/bundle.pem"])
def test_tls_verify_setting_rejects(value):
    with pytest.raises(AirflowException, match="Invalid TLS verify setting"):
        tls_verify_setting(value)


def test_settings_repr_hides_key(monkeypatch):
    use_connection(monkeypatch, "https://pigment.example")
    settings = PigmentHook().settings

    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
