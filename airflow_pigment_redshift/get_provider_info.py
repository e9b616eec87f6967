"""Provider metadata read by Airflow's ProvidersManager.

The connection forms are declared here (``conn-fields`` and ``ui-field-behaviour``)
because the Airflow 3.2+ UI builds its forms from this metadata without importing hooks.
"""

from __future__ import annotations

from typing import Any

from airflow_pigment_redshift import __version__
from airflow_pigment_redshift.connection_fields import (
    PIGMENT_BEHAVIOUR,
    PIGMENT_FIELDS,
    REDSHIFT_BEHAVIOUR,
    REDSHIFT_FIELDS,
    declarative_fields,
)

REDSHIFT_CONNECTION_TYPE: dict[str, Any] = {
    "connection-type": "pigment_redshift",
    "hook-class-name": "airflow_pigment_redshift.hooks.redshift_data.RedshiftDataApiHook",
    "hook-name": "Amazon Redshift for Pigment",
    "ui-field-behaviour": REDSHIFT_BEHAVIOUR.declarative(),
    "conn-fields": declarative_fields(REDSHIFT_FIELDS),
}

PIGMENT_CONNECTION_TYPE: dict[str, Any] = {
    "connection-type": "pigment",
    "hook-class-name": "airflow_pigment_redshift.hooks.pigment.PigmentHook",
    "hook-name": "Pigment",
    "ui-field-behaviour": PIGMENT_BEHAVIOUR.declarative(),
    "conn-fields": declarative_fields(PIGMENT_FIELDS),
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
