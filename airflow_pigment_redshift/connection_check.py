"""Explanations for connection test failures: what went wrong and how to fix it.

The functions here turn an AWS error or a Redshift engine error into a message that names the
cause and the fix (the IAM policy statement or the SQL to run), for the Test button.
"""

from __future__ import annotations

import json
import re
from datetime import date

from airflow_pigment_redshift.connection_settings import RedshiftConnectionSettings
from airflow_pigment_redshift.setup_assistant import (
    STATEMENT_ACTIONS,
    grant_select_sql,
    quote_identifier,
    statement_actions_statement,
)

# Warn this many days before a Pigment key expires.
KEY_EXPIRY_WARNING_DAYS = 14

_NOT_AUTHORIZED = re.compile(
    r"User: (?P<principal>\S+) is not authorized to perform: (?P<action>[\w:-]+)(?: on resource: (?P<resource>\S+))?"
)
_PERMISSION_DENIED_RELATION = re.compile(r'permission denied for (?:relation|table) "?(?P<table>[\w.$]+)"?')
_PERMISSION_DENIED_SCHEMA = re.compile(r'permission denied for schema "?(?P<schema>[\w$]+)"?')
_PERMISSION_DENIED_DATABASE = re.compile(r'permission denied for database "?(?P<database>[\w$]+)"?')
_DATABASE_MISSING = re.compile(r'database "?(?P<database>[\w$-]+)"? does not exist')
_USER_MISSING = re.compile(r'user "?(?P<user>[\w:$.@-]+)"? does not exist')
# NOTE: the texts the Data API returns for an unknown cluster or workgroup are unverified; these
# patterns cover the "endpoint doesn't exist in this region" text and generic "not found" wordings.
_TARGET_MISSING = re.compile(
    r"endpoint doesn't exist|cluster\b.*\bnot found|workgroup\b.*\bnot found|ClusterNotFound|"
    r"could not find (?:cluster|workgroup)",
    re.IGNORECASE,
)


def explain_aws_error(code: str, message: str, settings: RedshiftConnectionSettings, database: str) -> str:
    """Return the cause and the fix for an AWS API error of ``ExecuteStatement`` or STS.

    :param code: AWS error code, e.g. ``AccessDeniedException``.
    :param message: AWS error message.
    :param settings: the connection being tested.
    :param database: database the probe ran in.
    """
    denied = _NOT_AUTHORIZED.search(message)
    if denied:
        return explain_missing_action(denied.group("action"), denied.group("principal"), denied.group("resource"))
    if _TARGET_MISSING.search(message) or code in ("ClusterNotFound", "ClusterNotFoundFault"):
        kind = "Workgroup" if settings.workgroup_name else "Cluster"
        name = settings.workgroup_name or settings.cluster_identifier
        field = "Redshift Serverless workgroup" if settings.workgroup_name else "Redshift cluster name"
        return (
            f"{kind} {name!r} was not found in region {settings.region_name or '(default region)'} "
            f"({code}: {message}). Fix: check '{field}' and 'Region' against the Redshift console, "
            "where the region is shown in the top right corner."
        )
    if code in ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"):
        return (
            f"AWS rejected the access key ({code}: {message}). Fix: paste the 'Access key ID' and 'Secret access key' "
            "of an active key of the IAM user (IAM console > Users > Security credentials)."
        )
    if code == "ExpiredTokenException":
        return f"The AWS session token has expired ({message}). Fix: refresh the credentials, or remove the token."
    return f"AWS returned {code}: {message}"


def explain_missing_action(action: str, principal: str, resource: str | None) -> str:
    """Return the cause and the policy statement to add for an IAM action the identity lacks."""
    if action in STATEMENT_ACTIONS:
        statement = statement_actions_statement()
    else:
        statement = {"Sid": "AllowMissingAction", "Effect": "Allow", "Action": [action], "Resource": resource or "*"}
    return (
        f"IAM identity {principal} lacks the permission {action} on {resource or 'this resource'}. "
        "Fix: add this statement to the policy of that identity (or run `python -m airflow_pigment_redshift "
        f"setup` for the full policy):\n{json.dumps(statement, indent=2)}"
    )


def explain_statement_error(
    error: str, settings: RedshiftConnectionSettings, database: str, database_user: str, sql: str = ""
) -> str:
    """Return the cause and the fix for the ``Error`` text of a FAILED probe statement.

    :param error: the statement's ``Error`` text, as Redshift returned it.
    :param settings: the connection being tested.
    :param database: database the probe ran in.
    :param database_user: database user the probe ran as, as text for messages and GRANTs.
    :param sql: the statement's SQL, used to find the schema of a table Redshift names without one.
    """
    missing_database = _DATABASE_MISSING.search(error)
    if missing_database:
        return (
            f"Database {missing_database.group('database')!r} does not exist on {settings.target_description} "
            f"({error}). Fix: correct 'Default database name' (SELECT datname FROM pg_database lists them), "
            "or create it."
        )
    denied_table = _PERMISSION_DENIED_RELATION.search(error)
    if denied_table:
        table = _qualified_table(denied_table.group("table"), sql)
        return (
            f"Database user {database_user} may not read table {table} ({error}). "
            f"Fix: run as a superuser or the table owner:\n{grant_select_sql(table, database_user)}"
        )
    denied_schema = _PERMISSION_DENIED_SCHEMA.search(error)
    if denied_schema:
        schema = quote_identifier(denied_schema.group("schema"))
        return (
            f"Database user {database_user} may not use schema {denied_schema.group('schema')} ({error}). "
            f"Fix: run as a superuser or the schema owner:\nGRANT USAGE ON SCHEMA {schema} TO "
            f"{quote_identifier(database_user)};"
        )
    denied_database = _PERMISSION_DENIED_DATABASE.search(error)
    if denied_database:
        # NOTE: Redshift documents no CONNECT privilege (database privileges are CREATE, TEMPORARY,
        # ALTER and USAGE), so this fix covers a revoked PUBLIC access the PostgreSQL way; unverified.
        return (
            f"Database user {database_user} may not connect to database {denied_database.group('database')} "
            f"({error}). Fix: run as a superuser:\nGRANT CONNECT ON DATABASE "
            f"{quote_identifier(denied_database.group('database'))} TO {quote_identifier(database_user)};\n"
            "or check 'Default database name'."
        )
    missing_user = _USER_MISSING.search(error)
    if missing_user:
        return (
            f"Database user {missing_user.group('user')} does not exist in {settings.target_description} ({error}). "
            f"Fix: run as a superuser:\nCREATE USER {quote_identifier(missing_user.group('user'))} PASSWORD DISABLE;"
        )
    return f"The probe statement failed in database {database}: {error}"


def describe_key_expiry(expires_on: date | None, today: date) -> tuple[bool, str]:
    """Return whether a Pigment key is still valid and a sentence about its expiry.

    Pigment keys stop working on their expiration day: a key expiring on 1 July works until 30 June.

    :param expires_on: the expiration date from the connection, or None when unknown.
    :param today: the current date.
    """
    if expires_on is None:
        return True, "Key expiry date unknown: fill in 'Key expiry date' to be warned before it expires."
    days_left = (expires_on - today).days
    if days_left <= 0:
        return False, (
            f"The key expired on {expires_on.isoformat()} (it worked until the day before). Fix: create a new "
            "Import key in Pigment (Workspace Settings > API Keys) and update the connection."
        )
    if days_left <= KEY_EXPIRY_WARNING_DAYS:
        return True, (
            f"WARNING: the key expires on {expires_on.isoformat()}, in {days_left} day(s); the last working day "
            "is the day before. Create a new Import key in Pigment and update the connection before then."
        )
    return True, f"The key expires on {expires_on.isoformat()}."


def _qualified_table(table: str, sql: str) -> str:
    """Return ``schema.table``, taking the schema from the SQL when Redshift named the table alone."""
    if "." in table:
        return table
    match = re.search(rf'"?(\w+)"?\s*\.\s*"?{re.escape(table)}"?\b', sql, re.IGNORECASE)
    return f"{match.group(1)}.{table}" if match else f"public.{table}"
