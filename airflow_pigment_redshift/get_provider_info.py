"""Provider metadata read by Airflow's ProvidersManager.

The connection forms are declared here (``conn-fields`` and ``ui-field-behaviour``)
because the Airflow 3.2+ UI builds its forms from this metadata without importing hooks.
"""

from __future__ import annotations

from typing import Any

from airflow_pigment_redshift import __version__

_OPTIONAL_TEXT: dict[str, Any] = {"type": ["string", "null"]}

REDSHIFT_CONNECTION_TYPE: dict[str, Any] = {
    "connection-type": "pigment_redshift",
    "hook-class-name": "airflow_pigment_redshift.hooks.redshift_data.RedshiftDataApiHook",
    "hook-name": "Amazon Redshift for Pigment",
    "ui-field-behaviour": {
        "hidden-fields": ["host", "port", "schema"],
        "relabeling": {"login": "Access key ID", "password": "Secret access key"},
        "placeholders": {"login": "AKIA...", "password": "secret access key of the IAM user"},
    },
    "conn-fields": {
        "region_name": {
            "label": "Region",
            "description": "AWS region of the Redshift cluster, for example eu-west-1.",
            "schema": {**_OPTIONAL_TEXT},
        },
        "cluster_identifier": {
            "label": "Redshift cluster name",
            "description": "Identifier of the provisioned cluster that holds the database.",
            "schema": {**_OPTIONAL_TEXT},
        },
        "db_user": {
            "label": "Database user",
            "description": "Redshift database user the queries run as (needs SELECT on the tables).",
            "schema": {**_OPTIONAL_TEXT},
        },
        "database": {
            "label": "Default database name",
            "description": "Database the queries run in unless the task names another one.",
            "schema": {**_OPTIONAL_TEXT},
        },
        "endpoint_url": {
            "label": "Endpoint override",
            "description": "Redshift Data API endpoint to use instead of the AWS one "
            "(a VPC endpoint, or a local emulator). Leave empty for AWS.",
            "schema": {**_OPTIONAL_TEXT},
        },
    },
}

PIGMENT_CONNECTION_TYPE: dict[str, Any] = {
    "connection-type": "pigment",
    "hook-class-name": "airflow_pigment_redshift.hooks.pigment.PigmentHook",
    "hook-name": "Pigment",
    "ui-field-behaviour": {
        "hidden-fields": ["host", "port", "schema", "login"],
        "relabeling": {"password": "Import API key"},
        "placeholders": {"password": "Pigment Import API key"},
    },
    "conn-fields": {
        "base_url": {
            "label": "Base URL",
            "description": "Root URL of Pigment's API.",
            "schema": {"type": ["string", "null"], "default": "https://pigment.app"},
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape of Airflow's provider-info schema."""
    return {
        "package-name": "airflow-pigment-redshift",
        "name": "Redshift to Pigment",
        "description": "Run SQL on Amazon Redshift through the Data API and load the result "
        "into a Pigment block through Pigment's import API.",
        "versions": [__version__],
        "connection-types": [REDSHIFT_CONNECTION_TYPE, PIGMENT_CONNECTION_TYPE],
        "hooks": [
            {
                "integration-name": "Redshift to Pigment",
                "python-modules": [
                    "airflow_pigment_redshift.hooks.redshift_data",
                    "airflow_pigment_redshift.hooks.pigment",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Redshift to Pigment",
                "python-modules": ["airflow_pigment_redshift.operators.redshift_to_pigment"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Redshift to Pigment",
                "python-modules": ["airflow_pigment_redshift.sensors.redshift_statement"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Redshift to Pigment",
                "python-modules": [
                    "airflow_pigment_redshift.triggers.redshift_statement",
                    "airflow_pigment_redshift.triggers.pigment_import",
                ],
            }
        ],
    }
