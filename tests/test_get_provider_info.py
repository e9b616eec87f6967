from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_pigment_redshift.get_provider_info import get_provider_info

REDSHIFT_LABELS = {
    "region_name": "Region",
    "cluster_identifier": "Redshift cluster name",
    "db_user": "Database user",
    "database": "Default database name",
}


def test_provider_info_matches_airflow_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())

    jsonschema.validate(get_provider_info(), schema)


def test_package_name_is_canonical_distribution_name():
    assert get_provider_info()["package-name"] == "airflow-pigment-redshift"


def test_entry_point_registered():
    providers = entry_points(group="apache_airflow_provider")
    targets = {entry.value for entry in providers if entry.dist and entry.dist.name == "airflow-pigment-redshift"}

    assert targets == {"airflow_pigment_redshift.get_provider_info:get_provider_info"}


def test_providers_manager_resolves_both_hooks():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hooks = ProvidersManagerTaskRuntime().hooks

    assert hooks["pigment_redshift"].hook_class_name.endswith("RedshiftDataApiHook")
    assert hooks["pigment"].hook_class_name.endswith("PigmentHook")


@pytest.fixture(scope="module")
def hook_meta() -> dict:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    return {item.connection_type: item for item in HookMetaService.hook_meta_data()}


def test_redshift_form_shows_pigment_fields(hook_meta):
    form = hook_meta["pigment_redshift"]
    titles = {name: field["schema"]["title"] for name, field in form.extra_fields.items()}

    assert form.hook_name == "Amazon Redshift for Pigment"
    assert form.standard_fields.login.title == "Access key ID"
    assert form.standard_fields.password.title == "Secret access key"
    assert REDSHIFT_LABELS.items() <= titles.items()
    assert "endpoint_url" in titles


def test_redshift_form_hides_unused_fields(hook_meta):
    standard = hook_meta["pigment_redshift"].standard_fields

    assert standard.host.hidden is True
    assert standard.port.hidden is True
    assert standard.url_schema.hidden is True


def test_pigment_form_shows_key_and_base_url(hook_meta):
    form = hook_meta["pigment"]

    assert form.hook_name == "Pigment"
    assert form.standard_fields.password.title == "Import API key"
    assert form.standard_fields.login.hidden is True
    assert form.extra_fields["base_url"]["value"] == "https://pigment.app"


def test_optional_fields_do_not_block_save():
    for connection_type in get_provider_info()["connection-types"]:
        for name, field in connection_type["conn-fields"].items():
            assert "null" in field["schema"]["type"], f"{connection_type['connection-type']}.{name}"


def test_redshift_form_shows_extra_setup_fields(hook_meta):
    titles = {name: field["schema"]["title"] for name, field in hook_meta["pigment_redshift"].extra_fields.items()}

    assert titles["workgroup_name"] == "Redshift Serverless workgroup"
    assert titles["secret_arn"] == "Secrets Manager secret ARN"
    assert titles["role_arn"] == "IAM role to assume"
    assert titles["endpoint_url"] == "Endpoint override"
    assert titles["allowed_applications"] == "Application access"


def test_pigment_form_shows_timeout_and_expiry(hook_meta):
    fields = hook_meta["pigment"].extra_fields

    assert fields["request_timeout"]["schema"]["type"] == ["integer", "null"]
    assert fields["key_expires_on"]["schema"]["format"] == "date"
    assert fields["key_expires_on"]["schema"]["title"] == "Key expiry date"
