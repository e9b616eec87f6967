"""The setup assistant's IAM policies and SQL, for each authentication variant."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from airflow_pigment_redshift.__main__ import main
from airflow_pigment_redshift.connection_settings import RedshiftConnectionSettings
from airflow_pigment_redshift.setup_assistant import SetupError, SetupRequest, database_sql, iam_policy

ACCOUNT = "123456789012"
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:pigment-db-AbCdEf"
WORKGROUP_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
STATEMENT_ACTIONS = [
    "redshift-data:DescribeStatement",
    "redshift-data:GetStatementResult",
    "redshift-data:GetStatementResultV2",
    "redshift-data:CancelStatement",
]


def settings(**extra) -> RedshiftConnectionSettings:
    return RedshiftConnectionSettings.from_connection(
        "pigment_redshift_default", None, None, {"region_name": "eu-west-1", "database": "dev", **extra}
    )


def statements_by_sid(policy: dict) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def test_cluster_with_db_user_policy():
    request = SetupRequest(settings(cluster_identifier="analytics", db_user="pigment_db_user"), ACCOUNT)

    statements = statements_by_sid(iam_policy(request))

    assert statements["PigmentGetClusterCredentials"]["Action"] == ["redshift:GetClusterCredentials"]
    assert statements["PigmentGetClusterCredentials"]["Resource"] == [
        "arn:aws:redshift:eu-west-1:123456789012:dbname:analytics/dev",
        "arn:aws:redshift:eu-west-1:123456789012:dbuser:analytics/pigment_db_user",
    ]
    assert statements["PigmentExecuteStatement"]["Resource"] == "arn:aws:redshift:eu-west-1:123456789012:cluster:analytics"
    assert statements["PigmentReadOwnStatements"]["Action"] == STATEMENT_ACTIONS
    assert statements["PigmentReadOwnStatements"]["Condition"] == {
        "StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}
    }
    resources = [statement["Resource"] for statement in iam_policy(request)["Statement"]]
    assert not [resource for resource in json.dumps(resources).split('"') if "{" in resource or "<" in resource]


def test_cluster_with_db_user_sql():
    request = SetupRequest(
        settings(cluster_identifier="analytics", db_user="pigment_db_user"), ACCOUNT, tables=("tpch.lineitem", "sales.*")
    )

    assert database_sql(request) == [
        "CREATE USER pigment_db_user PASSWORD DISABLE;",
        "GRANT USAGE ON SCHEMA tpch TO pigment_db_user;",
        "GRANT USAGE ON SCHEMA sales TO pigment_db_user;",
        "GRANT SELECT ON TABLE tpch.lineitem TO pigment_db_user;",
        "GRANT SELECT ON ALL TABLES IN SCHEMA sales TO pigment_db_user;",
    ]


def test_serverless_policy_and_sql():
    request = SetupRequest(
        settings(workgroup_name="pigment-wg"),
        ACCOUNT,
        tables=("tpch.orders",),
        workgroup_id=WORKGROUP_ID,
        iam_identity="user/pigment_aws_user",
    )

    statements = statements_by_sid(iam_policy(request))
    workgroup_arn = f"arn:aws:redshift-serverless:eu-west-1:123456789012:workgroup/{WORKGROUP_ID}"

    assert statements["PigmentGetServerlessCredentials"]["Action"] == ["redshift-serverless:GetCredentials"]
    assert statements["PigmentGetServerlessCredentials"]["Resource"] == workgroup_arn
    assert statements["PigmentExecuteStatement"]["Resource"] == workgroup_arn
    sql = database_sql(request)
    assert sql[0].startswith('-- Redshift creates "IAM:pigment_aws_user" when the IAM identity first connects')
    assert sql[-1] == 'GRANT SELECT ON TABLE tpch.orders TO "IAM:pigment_aws_user";'


def test_secrets_manager_policy_and_sql():
    request = SetupRequest(
        settings(cluster_identifier="analytics", secret_arn=SECRET_ARN),
        ACCOUNT,
        tables=("tpch.orders",),
        secret_db_user="pigment_reader",
    )

    statements = statements_by_sid(iam_policy(request))

    assert statements["PigmentReadDatabaseSecret"] == {
        "Sid": "PigmentReadDatabaseSecret",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue"],
        "Resource": SECRET_ARN,
    }
    assert "PigmentGetClusterCredentials" not in statements
    assert database_sql(request)[0] == f"CREATE USER pigment_reader PASSWORD '<the password stored in {SECRET_ARN}>';"


def test_cluster_as_iam_identity_policy():
    request = SetupRequest(settings(cluster_identifier="analytics"), ACCOUNT, iam_identity="role/loader")

    statement = statements_by_sid(iam_policy(request))["PigmentGetClusterCredentialsWithIAM"]

    assert statement["Resource"] == "arn:aws:redshift:eu-west-1:123456789012:dbname:analytics/dev"
    assert database_sql(request)[0].startswith('-- Redshift creates "IAMR:loader"')


@pytest.mark.parametrize(
    ("extra", "kwargs", "message"),
    [
        ({"workgroup_name": "pigment-wg"}, {"iam_identity": "user/u"}, "needs --workgroup-id"),
        ({"cluster_identifier": "analytics"}, {}, "Pass --iam-identity"),
        ({"cluster_identifier": "analytics", "secret_arn": SECRET_ARN}, {}, "Pass --secret-db-user"),
        ({"cluster_identifier": "analytics", "db_user": "u"}, {"tables": ("lineitem",)}, "must be schema.table"),
        ({"cluster_identifier": "analytics", "db_user": "u"}, {"tables": ("tpch.x; DROP",)}, "must be schema.table"),
    ],
)
def test_missing_values_rejected(extra, kwargs, message):
    with pytest.raises(SetupError, match=message):
        SetupRequest(settings(**extra), ACCOUNT, **kwargs)


def test_malformed_account_rejected():
    with pytest.raises(SetupError, match="is not a 12-digit AWS account id"):
        SetupRequest(settings(cluster_identifier="analytics", db_user="u"), "1234")


def test_command_prints_policy_and_sql(monkeypatch, capsys):
    connection = {
        "conn_type": "pigment_redshift",
        "extra": {"region_name": "eu-west-1", "cluster_identifier": "analytics", "database": "dev",
                  "secret_arn": SECRET_ARN, "role_arn": f"arn:aws:iam::{ACCOUNT}:role/pigment-loader"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", json.dumps(connection))

    code = main(["setup", "--table", "tpch.lineitem", "--secret-db-user", "pigment_reader"])
    output = capsys.readouterr().out

    assert code == 0
    assert "# 1. IAM policy for the role arn:aws:iam::123456789012:role/pigment-loader:" in output
    assert '"Resource": "arn:aws:iam::123456789012:role/pigment-loader"' in output
    assert '"sts:AssumeRole"' in output
    assert "GRANT SELECT ON TABLE tpch.lineitem TO pigment_reader;" in output


def test_command_reports_missing_account(monkeypatch, capsys):
    connection = {"conn_type": "pigment_redshift",
                  "extra": {"region_name": "eu-west-1", "cluster_identifier": "analytics", "database": "dev"}}
    monkeypatch.setenv("AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT", json.dumps(connection))

    code = main(["setup", "--iam-identity", "user/u"])

    assert code == 2
    assert "Pass --account-id" in capsys.readouterr().err


def test_module_entry_point_runs(monkeypatch):
    result = subprocess.run(
        [sys.executable, "-m", "airflow_pigment_redshift", "setup", "--help"], capture_output=True, text=True, check=True
    )

    assert "--workgroup-id" in result.stdout


def test_module_stdout_has_only_output():
    connection = {"conn_type": "pigment_redshift",
                  "extra": {"region_name": "eu-west-1", "workgroup_name": "analytics-wg", "database": "dev"}}
    environment = {**os.environ, "AIRFLOW_CONN_PIGMENT_REDSHIFT_DEFAULT": json.dumps(connection)}

    result = subprocess.run(
        [sys.executable, "-m", "airflow_pigment_redshift", "setup", "--account-id", ACCOUNT,
         "--workgroup-id", WORKGROUP_ID, "--iam-identity", "user/pigment_aws_user", "--table", "tpch.orders"],
        capture_output=True, text=True, check=True, env=environment,
    )
    policy_text = result.stdout.split("# 1. IAM policy")[1].split("\n", 1)[1].split("\n\n# 2.")[0]

    assert result.stdout.startswith("# Setup of connection 'pigment_redshift_default': workgroup analytics-wg")
    assert json.loads(policy_text)["Version"] == "2012-10-17"
    assert result.stdout.rstrip().endswith('GRANT SELECT ON TABLE tpch.orders TO "IAM:pigment_aws_user";')


def test_command_reports_undefined_connection(monkeypatch, capsys):
    monkeypatch.delenv("AIRFLOW_CONN_MISSING_REDSHIFT", raising=False)

    code = main(["setup", "--conn-id", "missing_redshift", "--account-id", "123456789012"])

    assert code == 2
    error = capsys.readouterr().err
    assert "'missing_redshift' is not defined" in error
    assert "AIRFLOW_CONN_MISSING_REDSHIFT" in error
