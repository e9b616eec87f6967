"""Local emulator of the Amazon Redshift Data API that runs SQL on DuckDB.

Modules by concept: ``server`` (HTTP and AWS JSON 1.1), ``service`` (operations),
``statements`` (status and store), ``engine`` (DuckDB execution), ``translation``
(Redshift SQL to DuckDB), ``results`` (pages), ``column_types`` (type mapping) and
``access`` (simulated IAM permissions, targets and database grants).
"""

from __future__ import annotations

from airflow_pigment_redshift.testing.redshift_data.access import AccessSettings
from airflow_pigment_redshift.testing.redshift_data.emulator import RedshiftDataEmulator
from airflow_pigment_redshift.testing.redshift_data.statements import StatementStatus

__all__ = ["AccessSettings", "RedshiftDataEmulator", "StatementStatus"]
