"""Least-privilege IAM policy and database grants for a ``pigment_redshift`` connection.

``python -m airflow_pigment_redshift setup --conn-id ID --account-id ACCOUNT --table schema.table``
prints the IAM policy JSON for the identity the connection uses and the ``CREATE USER`` and
``GRANT`` SQL for the database user, with every name and ARN filled in from the connection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_pigment_redshift.connection_settings import RedshiftConnectionSettings
from airflow_pigment_redshift.exceptions import PigmentRedshiftError

# Data API actions the provider calls after ExecuteStatement. They act on statements, which have
# no ARN, so the policy scopes them to the caller's own statements with the condition key below,
# as the AWS managed policy AmazonRedshiftDataFullAccess does.
STATEMENT_ACTIONS = (
    "redshift-data:DescribeStatement",
    "redshift-data:GetStatementResult",
    "redshift-data:GetStatementResultV2",
    "redshift-data:CancelStatement",
)
STATEMENT_OWNER_CONDITION = {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}

ACCOUNT_ID_PATTERN = re.compile(r"\d{12}")
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,126}")
IAM_IDENTITY_PATTERN = re.compile(r"(user|role)/[\w+=,.@-]{1,64}")


class SetupError(PigmentRedshiftError, ValueError):
    """The setup assistant lacks a value it needs, or a value is malformed."""


@dataclass(frozen=True)
class SetupRequest:
    """Everything the policy and the grants are generated from.

    :param settings: the validated connection.
    :param account_id: AWS account id that owns the cluster or workgroup.
    :param tables: tables the DAGs read, as ``schema.table``, or ``schema.*`` for every table of a schema.
    :param workgroup_id: id (a UUID) of the serverless workgroup; IAM workgroup ARNs use the id, not the name.
    :param iam_identity: ``user/NAME`` or ``role/NAME`` of the IAM identity, when the database user is
        derived from it (serverless, or a cluster without a database user).
    :param secret_db_user: database user stored in the Secrets Manager secret.
    """

    settings: RedshiftConnectionSettings
    account_id: str
    tables: tuple[str, ...] = ()
    workgroup_id: str | None = None
    iam_identity: str | None = None
    secret_db_user: str | None = None

    def __post_init__(self) -> None:
        if not ACCOUNT_ID_PATTERN.fullmatch(self.account_id):
            raise SetupError(f"Account id {self.account_id!r} is not a 12-digit AWS account id.")
        if not self.settings.region_name:
            raise SetupError(
                f"Connection {self.settings.conn_id!r} has no 'Region'. Fill it in: the ARNs in the policy need it."
            )
        if not self.settings.database:
            raise SetupError(f"Connection {self.settings.conn_id!r} has no 'Default database name'. Fill it in.")
        if self.settings.workgroup_name and not self.workgroup_id:
            raise SetupError(
                f"Workgroup {self.settings.workgroup_name!r} needs --workgroup-id, because IAM ARNs of workgroups "
                "use the id. Find it with: aws redshift-serverless get-workgroup --workgroup-name "
                f"{self.settings.workgroup_name} --query workgroup.workgroupId"
            )
        if self.iam_identity is not None and not IAM_IDENTITY_PATTERN.fullmatch(self.iam_identity):
            raise SetupError(f"IAM identity {self.iam_identity!r} must look like user/NAME or role/NAME.")
        if self.settings.database_authentication == "iam" and self.iam_identity is None:
            raise SetupError(
                "The connection has no database user and no secret, so Redshift maps the IAM identity to a "
                "database user. Pass --iam-identity user/NAME or role/NAME to name it in the GRANT statements."
            )
        if self.settings.secret_arn and not self.secret_db_user:
            raise SetupError("Pass --secret-db-user with the user name stored in the Secrets Manager secret.")
        for table in self.tables:
            _split_table(table)

    @property
    def arn_prefix(self) -> str:
        """Return ``<region>:<account>`` for resource ARNs."""
        return f"{self.settings.region_name}:{self.account_id}"

    @property
    def target_arn(self) -> str:
        """Return the ARN of the cluster or workgroup."""
        if self.settings.workgroup_name:
            return f"arn:aws:redshift-serverless:{self.arn_prefix}:workgroup/{self.workgroup_id}"
        return f"arn:aws:redshift:{self.arn_prefix}:cluster:{self.settings.cluster_identifier}"

    @property
    def database_user(self) -> str:
        """Return the database user the statements run as."""
        settings = self.settings
        if settings.secret_arn:
            return self.secret_db_user or ""
        if settings.db_user:
            return settings.db_user
        kind, name = (self.iam_identity or "user/").split("/", 1)
        return f"IAMR:{name}" if kind == "role" else f"IAM:{name}"


def credentials_statement(request: SetupRequest) -> dict[str, Any]:
    """Return the policy statement that lets the Data API obtain database credentials."""
    settings = request.settings
    cluster = settings.cluster_identifier
    if settings.secret_arn:
        return _statement("PigmentReadDatabaseSecret", ["secretsmanager:GetSecretValue"], settings.secret_arn)
    if settings.workgroup_name:
        return _statement("PigmentGetServerlessCredentials", ["redshift-serverless:GetCredentials"], request.target_arn)
    if settings.db_user:
        return _statement(
            "PigmentGetClusterCredentials",
            ["redshift:GetClusterCredentials"],
            [
                f"arn:aws:redshift:{request.arn_prefix}:dbname:{cluster}/{settings.database}",
                f"arn:aws:redshift:{request.arn_prefix}:dbuser:{cluster}/{settings.db_user}",
            ],
        )
    return _statement(
        "PigmentGetClusterCredentialsWithIAM",
        ["redshift:GetClusterCredentialsWithIAM"],
        f"arn:aws:redshift:{request.arn_prefix}:dbname:{cluster}/{settings.database}",
    )


def execute_statement_statement(request: SetupRequest) -> dict[str, Any]:
    """Return the policy statement that allows ``ExecuteStatement`` on the cluster or workgroup."""
    return _statement("PigmentExecuteStatement", ["redshift-data:ExecuteStatement"], request.target_arn)


def statement_actions_statement() -> dict[str, Any]:
    """Return the policy statement for reading and cancelling the caller's own statements."""
    statement = _statement("PigmentReadOwnStatements", list(STATEMENT_ACTIONS), "*")
    statement["Condition"] = STATEMENT_OWNER_CONDITION
    return statement


def iam_policy(request: SetupRequest) -> dict[str, Any]:
    """Return the least-privilege identity policy for the IAM user or role the connection uses."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            credentials_statement(request),
            execute_statement_statement(request),
            statement_actions_statement(),
        ],
    }


def assume_role_policy(request: SetupRequest) -> dict[str, Any] | None:
    """Return the policy the access key's IAM user needs to assume the connection's role, if it has one."""
    role_arn = request.settings.role_arn
    if not role_arn:
        return None
    return {"Version": "2012-10-17", "Statement": [_statement("PigmentAssumeRole", ["sts:AssumeRole"], role_arn)]}


def database_sql(request: SetupRequest) -> list[str]:
    """Return the ``CREATE USER`` and ``GRANT`` statements for the database user, in run order."""
    settings = request.settings
    user = quote_identifier(request.database_user)
    statements: list[str] = []
    if settings.secret_arn:
        statements.append(f"CREATE USER {user} PASSWORD '<the password stored in {settings.secret_arn}>';")
    elif settings.db_user:
        # GetClusterCredentials issues temporary passwords, so the user needs no password of its own.
        statements.append(f"CREATE USER {user} PASSWORD DISABLE;")
    else:
        statements.append(
            f"-- Redshift creates {user} when the IAM identity first connects: press Test on the connection "
            "once, then run the GRANT statements below."
        )
    # Redshift has no CONNECT privilege to grant: its database privileges are CREATE, TEMPORARY,
    # ALTER and USAGE, and every user may connect. Reading needs USAGE on the schema and SELECT.

    schemas: list[str] = []
    for table in request.tables:
        schema, _ = _split_table(table)
        if schema not in schemas:
            schemas.append(schema)
    for schema in schemas:
        statements.append(f"GRANT USAGE ON SCHEMA {quote_identifier(schema)} TO {user};")
    for table in request.tables:
        schema, name = _split_table(table)
        if name == "*":
            statements.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote_identifier(schema)} TO {user};")
        else:
            statements.append(f"GRANT SELECT ON TABLE {quote_identifier(schema)}.{quote_identifier(name)} TO {user};")
    return statements


def grant_select_sql(table: str, user: str) -> str:
    """Return the ``GRANT SELECT`` statement for one table name as Redshift reported it."""
    schema, name = _split_table(table) if "." in table else ("public", table)
    return f"GRANT SELECT ON TABLE {quote_identifier(schema)}.{quote_identifier(name)} TO {quote_identifier(user)};"


def quote_identifier(name: str) -> str:
    """Return a Redshift identifier, double-quoted unless it is a plain lowercase name."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def account_id_from_settings(settings: RedshiftConnectionSettings) -> str | None:
    """Return the account id found in the connection's secret or role ARN, if any."""
    for arn in (settings.secret_arn, settings.role_arn):
        match = re.search(r":(\d{12}):", arn or "")
        if match:
            return match.group(1)
    return None


def render(request: SetupRequest) -> str:
    """Return the assistant's full output: the IAM policies and the SQL, with explanations."""
    import json

    settings = request.settings
    if settings.role_arn:
        identity = f"the role {settings.role_arn}"
    elif settings.access_key_id:
        identity = "the IAM user whose access key is on the connection"
    elif request.iam_identity:
        identity = f"the IAM {request.iam_identity.replace('/', ' ')} that the workers' AWS credentials belong to"
    else:
        identity = "the IAM identity of the workers' default AWS credentials"
    lines = [
        f"# Setup of connection {settings.conn_id!r}: {settings.target_description}, database {settings.database}, "
        f"region {settings.region_name}.",
        "",
        f"# 1. IAM policy for {identity}:",
        json.dumps(iam_policy(request), indent=2),
    ]
    assume = assume_role_policy(request)
    if assume is not None:
        lines += ["", "# 1b. Policy for the IAM user whose access key assumes the role:", json.dumps(assume, indent=2)]
    lines += [
        "",
        f"# 2. SQL to run as a superuser or database owner in database {settings.database}:",
        *database_sql(request),
    ]
    return "\n".join(lines) + "\n"


def _statement(sid: str, actions: Sequence[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": resource}


def _split_table(table: str) -> tuple[str, str]:
    schema, separator, name = table.partition(".")
    if not separator or not IDENTIFIER_PATTERN.fullmatch(schema) or (
        name != "*" and not IDENTIFIER_PATTERN.fullmatch(name)
    ):
        raise SetupError(f"Table {table!r} must be schema.table or schema.* (letters, digits, _ and $).")
    return schema, name
