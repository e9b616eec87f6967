"""Connection form fields of both connection types, declared once.

Airflow 3.2+ builds the Add Connection form from ``conn-fields`` and ``ui-field-behaviour`` in
the provider info, without importing hooks. Airflow 2.x and 3.0–3.1 call the hook methods
``get_connection_form_widgets`` and ``get_ui_field_behaviour`` instead. Both shapes are produced
here from the same :class:`FormField` list so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FormField:
    """One custom connection field, stored un-prefixed in ``Connection.extra``.

    :param name: key in the connection's extra.
    :param label: label shown in the form.
    :param description: help text shown under the field.
    :param secret: whether the value is masked (``format: password``).
    :param value_type: JSON Schema type of a filled-in value: ``string`` or ``integer``.
    :param default: initial value of the field.
    :param text_format: JSON Schema ``format`` that picks the widget, e.g. ``date``.
    """

    name: str
    label: str
    description: str
    secret: bool = False
    value_type: str = "string"
    default: Any = None
    text_format: str | None = None

    def declarative(self) -> dict[str, Any]:
        """Return the ``conn-fields`` entry: optional fields are nullable so Save is never blocked."""
        schema: dict[str, Any] = {"type": [self.value_type, "null"]}
        if self.secret:
            schema["format"] = "password"
        elif self.text_format:
            schema["format"] = self.text_format
        if self.default is not None:
            schema["default"] = self.default
        return {"label": self.label, "description": self.description, "schema": schema}


@dataclass(frozen=True)
class FieldBehaviour:
    """Standard-field behaviour: hidden fields, labels and placeholders.

    :param hidden: standard fields the form hides.
    :param relabeling: standard field name to label.
    :param placeholders: standard field name to placeholder text.
    """

    hidden: tuple[str, ...]
    relabeling: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)

    def declarative(self) -> dict[str, Any]:
        """Return the ``ui-field-behaviour`` entry, with the kebab-case keys of provider info."""
        return {
            "hidden-fields": list(self.hidden),
            "relabeling": dict(self.relabeling),
            "placeholders": dict(self.placeholders),
        }

    def legacy(self) -> dict[str, Any]:
        """Return the ``get_ui_field_behaviour()`` value, with the snake_case keys Airflow expects there."""
        return {
            "hidden_fields": list(self.hidden),
            "relabeling": dict(self.relabeling),
            "placeholders": dict(self.placeholders),
        }


REDSHIFT_BEHAVIOUR = FieldBehaviour(
    hidden=("host", "port", "schema"),
    relabeling={"login": "Access key ID", "password": "Secret access key"},
    placeholders={
        "login": "AKIA... (empty: IAM role or the worker's AWS credentials)",
        "password": "secret access key of the IAM user",
    },
)

# Pigment's own Redshift form lists Access key ID, Secret access key, Region, Redshift cluster
# name, Database user and Default database name, in this order; the fields after them cover
# Redshift setups that Pigment's form does not.
REDSHIFT_FIELDS: tuple[FormField, ...] = (
    FormField(
        "region_name",
        "Region",
        "AWS region of the cluster or workgroup, for example eu-west-1.",
    ),
    FormField(
        "cluster_identifier",
        "Redshift cluster name",
        "Identifier of the provisioned cluster. Leave empty when you use a serverless workgroup.",
    ),
    FormField(
        "db_user",
        "Database user",
        "Redshift user the queries run as, with temporary credentials (redshift:GetClusterCredentials). "
        "Leave empty with a workgroup, with a Secrets Manager secret, or to connect as the IAM identity.",
    ),
    FormField(
        "database",
        "Default database name",
        "Database the queries run in unless the task names another one.",
    ),
    FormField(
        "workgroup_name",
        "Redshift Serverless workgroup",
        "Workgroup name, used instead of the cluster name and database user.",
    ),
    FormField(
        "secret_arn",
        "Secrets Manager secret ARN",
        "Secret holding the database user name and password, used instead of the database user.",
    ),
    FormField(
        "role_arn",
        "IAM role to assume",
        "ARN of a role assumed with the access key (or the worker's AWS credentials) before calling Redshift.",
    ),
    FormField(
        "endpoint_url",
        "Endpoint override",
        "Redshift Data API endpoint to use instead of the AWS one (a VPC endpoint, or a local emulator). "
        "Leave empty for AWS.",
    ),
    FormField(
        "allowed_applications",
        "Application access",
        "Pigment applications allowed to receive data from this connection: ids or names, separated by "
        "commas. A task whose application is not listed is rejected before any query runs. "
        "Leave empty to allow every application.",
    ),
)

PIGMENT_BEHAVIOUR = FieldBehaviour(
    hidden=("host", "port", "schema", "login"),
    relabeling={"password": "Import API key"},
    placeholders={"password": "Pigment Import API key"},
)

PIGMENT_FIELDS: tuple[FormField, ...] = (
    FormField(
        "base_url",
        "Base URL",
        "Root URL of Pigment's API. Must use https, except for a loopback address (a local emulator).",
        default="https://pigment.app",
    ),
    FormField(
        "request_timeout",
        "Request timeout (seconds)",
        "Maximum time, in seconds, to connect and to send or read each request. Empty: 10 s to connect "
        "and 300 s to send or read.",
        value_type="integer",
    ),
    FormField(
        "key_expires_on",
        "Key expiry date",
        "Expiration date chosen when the key was created in Pigment (YYYY-MM-DD). The key works until the "
        "day before. The Test button warns when it is close.",
        text_format="date",
    ),
    FormField(
        "verify",
        "TLS verification",
        "Empty or true: verify Pigment's TLS certificate against the system CAs. A path: the CA bundle "
        "file or directory to trust. false: no verification, logged as a warning on every request.",
    ),
)


def declarative_fields(fields: tuple[FormField, ...]) -> dict[str, Any]:
    """Return the ``conn-fields`` mapping of a connection type, in form order."""
    return {form_field.name: form_field.declarative() for form_field in fields}


def legacy_form_widgets(fields: tuple[FormField, ...]) -> dict[str, Any]:
    """Return ``get_connection_form_widgets()`` for Airflow versions that read the hook methods.

    wtforms, Flask-AppBuilder and flask-babel are imported here, not at module level, because
    only the Flask UI of Airflow 2 and the form conversion of Airflow 3.0–3.1 have them.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for form_field in fields:
        label = lazy_gettext(form_field.label)
        if form_field.secret:
            widget = PasswordField(
                label, widget=BS3PasswordFieldWidget(), description=form_field.description
            )
        elif form_field.value_type == "integer":
            widget = IntegerField(
                label,
                validators=[Optional()],
                widget=BS3TextFieldWidget(),
                description=form_field.description,
                default=form_field.default,
            )
        else:
            widget = StringField(
                label, widget=BS3TextFieldWidget(), description=form_field.description, default=form_field.default
            )
        widgets[form_field.name] = widget
    return widgets
