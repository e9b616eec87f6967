"""Airflow version flags for code paths that differ between Airflow 2 and 3."""

from __future__ import annotations

from packaging.version import Version

from airflow import __version__ as _airflow_version

_AIRFLOW_RELEASE = Version(Version(_airflow_version).base_version).release

AIRFLOW_V_3_0_PLUS: bool = _AIRFLOW_RELEASE >= (3, 0)
AIRFLOW_V_3_3_PLUS: bool = _AIRFLOW_RELEASE >= (3, 3)

__all__ = ["AIRFLOW_V_3_0_PLUS", "AIRFLOW_V_3_3_PLUS"]
