"""Simulated IAM permissions, Redshift targets and database grants for ``ExecuteStatement``.

By default :class:`AccessSettings` allows everything, so the emulator behaves as if the caller
had every permission. Tests restrict it to reproduce the failures a connection test must explain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from airflow_pigment_redshift.testing.redshift_data.errors import DataApiError

DEFAULT_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class AccessSettings:
    """Caller identity and the resources it may reach.

    :param account_id: AWS account id used in resource ARNs.
    :param region: region used in resource ARNs.
    :param caller_arn: IAM identity named in access-denied messages.
    :param denied_actions: IAM actions the caller lacks, e.g. ``redshift:GetClusterCredentials``.
    :param clusters: cluster identifiers that exist, or None for any cluster.
    :param workgroups: workgroup names that exist, or None for any workgroup.
    :param database_connect: database user to the databases it may CONNECT to, or None for no restriction.
        Users absent from the mapping may connect everywhere.
    :param table_select: database user to the tables it may SELECT, as ``schema.table`` or ``schema.*``,
        or None for no restriction. Users absent from the mapping may read every table.
    :param secret_db_user: database user stored in any Secrets Manager secret the request names.
    :param denial_error_code: error code of an access-denied response.
    """

    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = "eu-west-1"
    caller_arn: str = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/pigment_aws_user"
    denied_actions: frozenset[str] = frozenset()
    clusters: frozenset[str] | None = None
    workgroups: frozenset[str] | None = None
    database_connect: Mapping[str, Iterable[str]] | None = None
    table_select: Mapping[str, Iterable[str]] | None = None
    secret_db_user: str = "pigment_db_user"
    # NOTE: whether a missing redshift:GetClusterCredentials permission reaches the caller as
    # AccessDeniedException or ValidationException is unverified; the IAM text is the same either way.
    denial_error_code: str = "AccessDeniedException"
    _arn_prefix: str = field(init=False, repr=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "_arn_prefix", f"{self.region}:{self.account_id}")

    def check_execute_statement(self, request: Mapping[str, Any]) -> None:
        """Raise the API error a real service returns for this request's identity and target.

        :param request: a validated ``ExecuteStatement`` request body.
        :raises DataApiError: on a denied IAM action or an unknown cluster or workgroup.
        """
        cluster = request.get("ClusterIdentifier")
        workgroup = request.get("WorkgroupName")
        database = request.get("Database")
        if cluster:
            self._require("redshift-data:ExecuteStatement", f"arn:aws:redshift:{self._arn_prefix}:cluster:{cluster}")
            if self.clusters is not None and cluster not in self.clusters:
                # NOTE: the error text for an unknown cluster is the one seen for a cluster in another
                # region; the exact code and text are unverified.
                raise DataApiError("ValidationException", "Redshift endpoint doesn't exist in this region.")
        else:
            workgroup_arn = f"arn:aws:redshift-serverless:{self._arn_prefix}:workgroup/{workgroup}"
            self._require("redshift-data:ExecuteStatement", workgroup_arn)
            if self.workgroups is not None and workgroup not in self.workgroups:
                # NOTE: the error text for an unknown workgroup is unverified.
                raise DataApiError("ValidationException", f"Workgroup {workgroup} not found.")

        secret_arn = request.get("SecretArn")
        if secret_arn:
            self._require("secretsmanager:GetSecretValue", secret_arn)
        elif cluster and request.get("DbUser"):
            self._require(
                "redshift:GetClusterCredentials",
                f"arn:aws:redshift:{self._arn_prefix}:dbuser:{cluster}/{request['DbUser']}",
            )
        elif cluster:
            self._require(
                "redshift:GetClusterCredentialsWithIAM",
                f"arn:aws:redshift:{self._arn_prefix}:dbname:{cluster}/{database}",
            )
        else:
            self._require(
                "redshift-serverless:GetCredentials",
                f"arn:aws:redshift-serverless:{self._arn_prefix}:workgroup/{workgroup}",
            )

    def statement_error(self, request: Mapping[str, Any], sql: str) -> str | None:
        """Return the ``Error`` text a statement ends FAILED with for lack of grants, or None.

        :param request: the ``ExecuteStatement`` request body.
        :param sql: the statement's SQL text.
        """
        user = self.database_user(request)
        database = request.get("Database")
        if self.database_connect is not None and user in self.database_connect:
            if database not in set(self.database_connect[user]):
                return f"ERROR: permission denied for database {database}"
        if self.table_select is not None and user in self.table_select:
            granted = set(self.table_select[user])
            for schema, table in _tables_read(sql):
                if f"{schema}.{table}" not in granted and f"{schema}.*" not in granted:
                    return f"ERROR: permission denied for relation {table}"
        return None

    def database_user(self, request: Mapping[str, Any]) -> str:
        """Return the database user a request runs as."""
        if request.get("SecretArn"):
            return self.secret_db_user
        if request.get("DbUser"):
            return str(request["DbUser"])
        identity = self.caller_arn.rsplit("/", 1)[-1]
        return f"IAMR:{identity}" if ":role/" in self.caller_arn else f"IAM:{identity}"

    def _require(self, action: str, resource: str) -> None:
        if action in self.denied_actions:
            raise DataApiError(
                self.denial_error_code,
                f"User: {self.caller_arn} is not authorized to perform: {action} on resource: {resource} "
                f"because no identity-based policy allows the {action} action",
            )


def _tables_read(sql: str) -> list[tuple[str, str]]:
    """Return ``(schema, table)`` for every table the SQL reads, ``public`` when unqualified; CTEs excluded."""
    try:
        tree = sqlglot.parse_one(sql, read="redshift")
    except sqlglot.errors.ParseError:
        return []
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables = []
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.db and table.name in cte_names):
            continue
        tables.append((table.db or "public", table.name))
    return tables
