"""Apache Airflow provider: Amazon Redshift (Data API) to Pigment imports."""

from __future__ import annotations

__version__ = "0.1.0"
