"""Command line of the provider: ``python -m airflow_pigment_redshift setup ...``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

from airflow_pigment_redshift.connection_settings import InvalidConnectionError, RedshiftConnectionSettings
from airflow_pigment_redshift.setup_assistant import SetupError, SetupRequest, account_id_from_settings, render


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airflow_pigment_redshift")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser(
        "setup",
        help="print the least-privilege IAM policy and the CREATE USER/GRANT SQL for a pigment_redshift connection",
    )
    setup.add_argument("--conn-id", default="pigment_redshift_default", help="connection id (default: %(default)s)")
    setup.add_argument(
        "--account-id", help="AWS account id of the cluster or workgroup (default: taken from the secret or role ARN)"
    )
    setup.add_argument(
        "--table",
        action="append",
        dest="tables",
        default=[],
        metavar="SCHEMA.TABLE",
        help="table the DAGs read, or SCHEMA.* for every table of a schema; repeat for several",
    )
    setup.add_argument("--workgroup-id", help="id (UUID) of the serverless workgroup, needed with a workgroup")
    setup.add_argument(
        "--iam-identity",
        metavar="user/NAME|role/NAME",
        help="IAM identity mapped to the database user, needed without a database user or secret",
    )
    setup.add_argument("--secret-db-user", help="database user stored in the Secrets Manager secret")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what is written to file descriptor 1 to stderr, so stdout has only the assistant's output.

    Airflow's logger writes its messages to stdout through a stream it captured at start-up, so
    the redirection is done on the file descriptor rather than on ``sys.stdout``.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command and return the process exit code."""
    arguments = _parse_arguments(argv)
    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.common.compat.sdk import BaseHook

    try:
        with _stdout_to_stderr():
            connection = BaseHook.get_connection(arguments.conn_id)
        settings = RedshiftConnectionSettings.from_connection(
            connection.conn_id, connection.login, connection.password, connection.extra_dejson
        )
        account_id = arguments.account_id or account_id_from_settings(settings)
        if not account_id:
            raise SetupError("Pass --account-id: the 12-digit AWS account id that owns the cluster or workgroup.")
        request = SetupRequest(
            settings=settings,
            account_id=account_id,
            tables=tuple(arguments.tables),
            workgroup_id=arguments.workgroup_id,
            iam_identity=arguments.iam_identity,
            secret_db_user=arguments.secret_db_user,
        )
    except AirflowNotFoundException:
        print(
            f"error: connection {arguments.conn_id!r} is not defined. The assistant reads an existing "
            "pigment_redshift connection: create it in the Airflow UI or set "
            f"AIRFLOW_CONN_{arguments.conn_id.upper()} first.",
            file=sys.stderr,
        )
        return 2
    except (InvalidConnectionError, SetupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
