"""Simulated IAM denials, unknown targets and missing grants of the Redshift Data API emulator."""

from __future__ import annotations

import pytest

from airflow_pigment_redshift.testing.redshift_data.access import AccessSettings
from airflow_pigment_redshift.testing.redshift_data.errors import DataApiError

CLUSTER_REQUEST = {"ClusterIdentifier": "analytics", "Database": "dev", "DbUser": "pigment_db_user"}


def test_default_settings_allow_everything():
    access = AccessSettings()

    access.check_execute_statement(CLUSTER_REQUEST)

    assert access.statement_error(CLUSTER_REQUEST, "SELECT * FROM tpch.lineitem") is None


@pytest.mark.parametrize(
    ("request_body", "action", "resource"),
    [
        (CLUSTER_REQUEST, "redshift:GetClusterCredentials", "dbuser:analytics/pigment_db_user"),
        ({"ClusterIdentifier": "analytics", "Database": "dev"}, "redshift:GetClusterCredentialsWithIAM", "dbname:analytics/dev"),
        ({"WorkgroupName": "wg-one", "Database": "dev"}, "redshift-serverless:GetCredentials", "workgroup/wg-one"),
        ({"WorkgroupName": "wg-one", "Database": "dev", "SecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s"},
         "secretsmanager:GetSecretValue", "secret:s"),
        (CLUSTER_REQUEST, "redshift-data:ExecuteStatement", "cluster:analytics"),
    ],
)
def test_denied_action_names_action_and_resource(request_body, action, resource):
    access = AccessSettings(denied_actions=frozenset({action}))

    with pytest.raises(DataApiError) as raised:
        access.check_execute_statement(request_body)

    assert raised.value.code == "AccessDeniedException"
    assert f"is not authorized to perform: {action} on resource: arn:aws:" in raised.value.message
    assert raised.value.message.split(" because")[0].endswith(resource)


def test_unknown_cluster_and_workgroup_rejected():
    access = AccessSettings(clusters=frozenset({"other"}), workgroups=frozenset({"other"}))

    with pytest.raises(DataApiError, match="endpoint doesn't exist"):
        access.check_execute_statement(CLUSTER_REQUEST)
    with pytest.raises(DataApiError, match="Workgroup wg-one not found"):
        access.check_execute_statement({"WorkgroupName": "wg-one", "Database": "dev"})


def test_grants_checked_per_user_and_table():
    access = AccessSettings(
        database_connect={"pigment_db_user": ["dev"]},
        table_select={"pigment_db_user": ["tpch.orders", "sales.*"]},
    )

    assert access.statement_error({**CLUSTER_REQUEST, "Database": "prod"}, "SELECT 1") == (
        "ERROR: permission denied for database prod"
    )
    assert access.statement_error(CLUSTER_REQUEST, "SELECT * FROM tpch.orders JOIN sales.x USING (k)") is None
    assert access.statement_error(CLUSTER_REQUEST, "WITH o AS (SELECT 1) SELECT * FROM o, tpch.lineitem") == (
        "ERROR: permission denied for relation lineitem"
    )
    assert access.statement_error({**CLUSTER_REQUEST, "DbUser": "admin"}, "SELECT * FROM tpch.lineitem") is None


def test_iam_identity_mapped_to_database_user():
    assert AccessSettings().database_user({"ClusterIdentifier": "a"}) == "IAM:pigment_aws_user"
    role = AccessSettings(caller_arn="arn:aws:iam::123456789012:role/loader")
    assert role.database_user({"WorkgroupName": "wg"}) == "IAMR:loader"
