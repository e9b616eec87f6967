"""Both form definitions (provider info and the legacy hook methods) describe the same fields."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from airflow_pigment_redshift.get_provider_info import get_provider_info
from airflow_pigment_redshift.hooks.pigment import PigmentHook
from airflow_pigment_redshift.hooks.redshift_data import RedshiftDataApiHook

PIGMENT_REDSHIFT_ORDER = [
    "region_name",
    "cluster_identifier",
    "db_user",
    "database",
    "workgroup_name",
    "secret_arn",
    "role_arn",
    "endpoint_url",
    "allowed_applications",
]


class _RecordedField:
    """Stand-in for a wtforms field class that records its constructor arguments."""

    kind = "string"

    def __init__(self, label: Any, validators: Any = None, **kwargs: Any) -> None:
        self.label = str(label)
        self.validators = validators
        self.kwargs = kwargs


class _PasswordField(_RecordedField):
    kind = "password"


class _IntegerField(_RecordedField):
    kind = "integer"


@pytest.fixture
def fake_flask_form_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install minimal wtforms, Flask-AppBuilder and flask-babel modules, as Airflow 3.0 mocks them."""
    wtforms = types.ModuleType("wtforms")
    wtforms.StringField = _RecordedField
    wtforms.PasswordField = _PasswordField
    wtforms.IntegerField = _IntegerField
    validators = types.ModuleType("wtforms.validators")
    validators.Optional = lambda: "optional"
    fieldwidgets = types.ModuleType("flask_appbuilder.fieldwidgets")
    fieldwidgets.BS3TextFieldWidget = lambda: "text-widget"
    fieldwidgets.BS3PasswordFieldWidget = lambda: "password-widget"
    babel = types.ModuleType("flask_babel")
    babel.lazy_gettext = str
    for name, module in {
        "wtforms": wtforms,
        "wtforms.validators": validators,
        "flask_appbuilder": types.ModuleType("flask_appbuilder"),
        "flask_appbuilder.fieldwidgets": fieldwidgets,
        "flask_babel": babel,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)


def _as_conn_field(widget: _RecordedField) -> dict[str, Any]:
    """Convert a recorded legacy widget to a ``conn-fields`` entry, as Airflow 3.0 converts wtforms fields."""
    schema: dict[str, Any] = {"type": ["integer" if widget.kind == "integer" else "string", "null"]}
    if widget.kind == "password":
        schema["format"] = "password"
    if widget.kwargs.get("default") is not None:
        schema["default"] = widget.kwargs["default"]
    return {"label": widget.label, "description": widget.kwargs["description"], "schema": schema}


def _connection_type(name: str) -> dict[str, Any]:
    return next(item for item in get_provider_info()["connection-types"] if item["connection-type"] == name)


@pytest.mark.parametrize(
    ("hook_class", "connection_type"),
    [(RedshiftDataApiHook, "pigment_redshift"), (PigmentHook, "pigment")],
)
def test_legacy_widgets_match_conn_fields(fake_flask_form_modules, hook_class, connection_type):
    declared = _connection_type(connection_type)["conn-fields"]
    widgets = hook_class.get_connection_form_widgets()

    assert list(widgets) == list(declared)
    for name, widget in widgets.items():
        expected = dict(declared[name], schema=dict(declared[name]["schema"]))
        # wtforms has no date field in the Flask UI's supported set, so the legacy form uses text.
        if expected["schema"].get("format") == "date":
            del expected["schema"]["format"]
        assert _as_conn_field(widget) == expected, name


@pytest.mark.parametrize(
    ("hook_class", "connection_type"),
    [(RedshiftDataApiHook, "pigment_redshift"), (PigmentHook, "pigment")],
)
def test_legacy_behaviour_matches_declared(hook_class, connection_type):
    declared = _connection_type(connection_type)["ui-field-behaviour"]
    legacy = hook_class.get_ui_field_behaviour()

    assert legacy == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


def test_legacy_methods_defined_on_each_hook():
    for hook_class in (RedshiftDataApiHook, PigmentHook):
        assert "get_connection_form_widgets" in hook_class.__dict__
        assert "get_ui_field_behaviour" in hook_class.__dict__


def test_redshift_fields_in_pigment_order():
    assert list(_connection_type("pigment_redshift")["conn-fields"]) == PIGMENT_REDSHIFT_ORDER


def test_every_field_is_nullable():
    for connection_type in get_provider_info()["connection-types"]:
        for name, entry in connection_type["conn-fields"].items():
            assert "null" in entry["schema"]["type"], name
            assert set(entry) <= {"label", "description", "schema"}, name


def test_hooks_accept_conn_name_attr_keyword():
    assert RedshiftDataApiHook(**{RedshiftDataApiHook.conn_name_attr: "probe"}).redshift_conn_id == "probe"
    assert PigmentHook(**{PigmentHook.conn_name_attr: "probe"}).pigment_conn_id == "probe"
