"""Application access: which Pigment applications may receive data from a Redshift connection.

As on Pigment's own Redshift connection, the connection lists the applications allowed to use
it. A task whose target application is not listed is rejected before any query runs, and an
empty list allows every application.
"""

from __future__ import annotations

from airflow_pigment_redshift.connection_settings import RedshiftConnectionSettings
from airflow_pigment_redshift.exceptions import PigmentRedshiftError


class ApplicationNotAllowedError(PigmentRedshiftError):
    """The task's Pigment application is not in the connection's application access list."""


def check_application_access(settings: RedshiftConnectionSettings, application: str | None) -> None:
    """Raise unless the connection allows sending data to ``application``.

    Ids and names are compared without regard to case or surrounding blanks.

    :param settings: the validated Redshift connection.
    :param application: id or name of the task's Pigment application, or None when the task sets none.
    :raises ApplicationNotAllowedError: naming the connection, the application and the allowed list.
    """
    allowed = settings.allowed_applications
    if not allowed:
        return
    listed = ", ".join(allowed)
    if not application or not application.strip():
        raise ApplicationNotAllowedError(
            f"Connection {settings.conn_id!r} limits 'Application access' to: {listed}. Set application= on the "
            "task to the Pigment application it loads into."
        )
    if application.strip().casefold() not in {name.casefold() for name in allowed}:
        raise ApplicationNotAllowedError(
            f"Application {application!r} may not receive data from connection {settings.conn_id!r}, whose "
            f"'Application access' lists: {listed}. Add it to the connection's 'Application access', or use a "
            "connection meant for this application."
        )
