"""Validation of ``pigment_redshift`` and ``pigment`` connections.

Every check raises :class:`InvalidConnectionError` naming the connection, the field as the form
labels it, the offending value (never a secret) and the fix, before any request is sent.
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from airflow_pigment_redshift.connection_fields import PIGMENT_FIELDS, REDSHIFT_FIELDS
from airflow_pigment_redshift.exceptions import PigmentRedshiftError

# AWS rule for cluster identifiers: 1 to 63 lowercase letters, digits or hyphens, starting with a
# letter, without two consecutive hyphens and not ending with a hyphen.
CLUSTER_IDENTIFIER_PATTERN = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")
# Workgroup names: 3 to 64 lowercase letters, digits or hyphens.
WORKGROUP_NAME_PATTERN = re.compile(r"[a-z0-9-]{3,64}")
SECRET_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+")
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w/+=,.@-]+")
ACCESS_KEY_ID_PATTERN = re.compile(r"[A-Z0-9]{16,128}")

# Extra keys of the amazon provider's AWS connection that this connection type passes through.
AWS_PASSTHROUGH_EXTRA_KEYS = frozenset(
    {
        "aws_session_token",
        "assume_role_method",
        "assume_role_kwargs",
        "session_kwargs",
        "config_kwargs",
        "service_config",
        "verify",
        "profile_name",
        "external_id",
    }
)
REDSHIFT_EXTRA_KEYS = frozenset(form_field.name for form_field in REDSHIFT_FIELDS)
PIGMENT_EXTRA_KEYS = frozenset(form_field.name for form_field in PIGMENT_FIELDS)

# Extra keys that describe the Redshift target or Pigment-side settings, so they are not handed
# to the amazon provider's AWS connection wrapper.
NON_AWS_EXTRA_KEYS = frozenset(
    {"cluster_identifier", "db_user", "database", "workgroup_name", "secret_arn", "allowed_applications"}
)

_LABELS = {form_field.name: form_field.label for form_field in (*REDSHIFT_FIELDS, *PIGMENT_FIELDS)}
_LABELS.update({"login": "Access key ID", "password": "Secret access key"})

_LOOPBACK_NAMES = frozenset({"localhost"})


class InvalidConnectionError(PigmentRedshiftError, ValueError):
    """A connection's fields are missing, malformed or contradict each other."""


class UnknownExtraFieldWarning(UserWarning):
    """A connection's extra has a key that this connection type does not read."""


def _label(name: str) -> str:
    return f"'{_LABELS.get(name, name)}' ({name})"


def _text(extra: Mapping[str, Any], name: str) -> str | None:
    value = extra.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@cache
def known_aws_regions() -> frozenset[str]:
    """Return every region of every AWS partition listed in botocore's endpoint data."""
    import botocore.session

    endpoints = botocore.session.get_session().get_data("endpoints")
    return frozenset(region for partition in endpoints["partitions"] for region in partition["regions"])


def warn_unknown_extra_keys(conn_id: str, extra: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """Warn about extra keys the connection type does not read and return them.

    :param conn_id: connection id, for the message.
    :param extra: the connection's extra.
    :param known: the keys the connection type reads.
    """
    known_keys = sorted(known)
    unknown = sorted(key for key in extra if key not in known_keys)
    if unknown:
        warnings.warn(
            f"Connection {conn_id!r} has extra keys this connection type does not read: {', '.join(unknown)}. "
            f"They are ignored. Known keys: {', '.join(known_keys)}. Check the spelling.",
            UnknownExtraFieldWarning,
            stacklevel=3,
        )
    return unknown


def parse_application_list(value: Any) -> tuple[str, ...]:
    """Return the allowed Pigment applications from a comma- or newline-separated text or a JSON list."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else re.split(r"[,\n]", str(value))
    return tuple(text for text in (str(item).strip() for item in items) if text)


@dataclass(frozen=True)
class RedshiftConnectionSettings:
    """Validated settings of a ``pigment_redshift`` connection.

    :param conn_id: connection id.
    :param access_key_id: access key of the IAM user, or None for a role or the default chain.
    :param has_secret_access_key: whether the secret access key is set (the key itself is not kept here).
    :param region_name: AWS region.
    :param cluster_identifier: provisioned cluster, or None with a workgroup.
    :param workgroup_name: serverless workgroup, or None with a cluster.
    :param db_user: database user for temporary credentials.
    :param database: default database.
    :param secret_arn: Secrets Manager secret with the database credentials.
    :param role_arn: IAM role to assume.
    :param endpoint_url: Data API endpoint override.
    :param allowed_applications: Pigment applications allowed to receive data; empty allows all.
    """

    conn_id: str
    access_key_id: str | None
    has_secret_access_key: bool
    region_name: str | None
    cluster_identifier: str | None
    workgroup_name: str | None
    db_user: str | None
    database: str | None
    secret_arn: str | None
    role_arn: str | None
    endpoint_url: str | None
    allowed_applications: tuple[str, ...]

    @property
    def target_description(self) -> str:
        """Return the target as text, e.g. ``cluster analytics``."""
        if self.workgroup_name:
            return f"workgroup {self.workgroup_name}"
        return f"cluster {self.cluster_identifier}"

    @property
    def database_authentication(self) -> str:
        """Return how the Data API authenticates to the database: ``secret``, ``db_user`` or ``iam``."""
        if self.secret_arn:
            return "secret"
        if self.db_user:
            return "db_user"
        return "iam"

    @property
    def aws_credentials(self) -> str:
        """Return where AWS credentials come from, as text for messages."""
        source = f"access key {mask_access_key(self.access_key_id)}" if self.access_key_id else "default AWS chain"
        if self.role_arn:
            return f"role {self.role_arn} assumed with the {source}"
        return source

    @classmethod
    def from_connection(
        cls, conn_id: str, login: str | None, password: str | None, extra: Mapping[str, Any]
    ) -> RedshiftConnectionSettings:
        """Validate a connection's fields and return its settings.

        :param conn_id: connection id, for messages.
        :param login: the access key id.
        :param password: the secret access key.
        :param extra: the connection's extra.
        :raises InvalidConnectionError: naming the fields to fix.
        """
        warn_unknown_extra_keys(conn_id, extra, REDSHIFT_EXTRA_KEYS | AWS_PASSTHROUGH_EXTRA_KEYS)
        access_key_id = (login or "").strip() or None
        has_secret = bool((password or "").strip())
        prefix = f"Connection {conn_id!r}:"

        if has_secret and not access_key_id:
            raise InvalidConnectionError(
                f"{prefix} {_label('password')} is set but {_label('login')} is empty. "
                "Fill in both keys of the IAM user, or clear both to use an IAM role or the worker's credentials."
            )
        if access_key_id and not has_secret:
            raise InvalidConnectionError(
                f"{prefix} {_label('login')} is set but {_label('password')} is empty. "
                "Fill in the secret access key that belongs to this access key."
            )
        if access_key_id and not ACCESS_KEY_ID_PATTERN.fullmatch(access_key_id):
            raise InvalidConnectionError(
                f"{prefix} {_label('login')} {access_key_id!r} is not an AWS access key id "
                "(16 to 128 uppercase letters and digits, e.g. AKIA...). Paste the key id without spaces or quotes."
            )

        region_name = _text(extra, "region_name")
        if region_name and region_name not in known_aws_regions():
            raise InvalidConnectionError(
                f"{prefix} {_label('region_name')} {region_name!r} is not an AWS region known to botocore. "
                "Use the region code shown in the Redshift console, for example eu-west-1."
            )

        cluster_identifier = _text(extra, "cluster_identifier")
        workgroup_name = _text(extra, "workgroup_name")
        db_user = _text(extra, "db_user")
        secret_arn = _text(extra, "secret_arn")
        role_arn = _text(extra, "role_arn")

        if cluster_identifier and workgroup_name:
            raise InvalidConnectionError(
                f"{prefix} both {_label('cluster_identifier')} and {_label('workgroup_name')} are set. "
                "Keep the cluster name for a provisioned cluster, or the workgroup for Redshift Serverless, not both."
            )
        if not cluster_identifier and not workgroup_name:
            raise InvalidConnectionError(
                f"{prefix} neither {_label('cluster_identifier')} nor {_label('workgroup_name')} is set. "
                "Fill in exactly one of them."
            )
        if cluster_identifier and not CLUSTER_IDENTIFIER_PATTERN.fullmatch(cluster_identifier):
            raise InvalidConnectionError(
                f"{prefix} {_label('cluster_identifier')} {cluster_identifier!r} is not a valid cluster "
                "identifier: AWS allows 1 to 63 lowercase letters, digits or hyphens, starting with a letter, "
                "without '--' and not ending with '-'. Copy the identifier from the Redshift console."
            )
        if workgroup_name and not WORKGROUP_NAME_PATTERN.fullmatch(workgroup_name):
            raise InvalidConnectionError(
                f"{prefix} {_label('workgroup_name')} {workgroup_name!r} is not a valid workgroup name "
                "(3 to 64 lowercase letters, digits or hyphens). Copy the name from the Redshift Serverless console."
            )

        if db_user and secret_arn:
            raise InvalidConnectionError(
                f"{prefix} both {_label('db_user')} and {_label('secret_arn')} are set, but the secret already "
                "names the database user. Clear one of them."
            )
        if db_user and workgroup_name:
            raise InvalidConnectionError(
                f"{prefix} {_label('db_user')} is set with {_label('workgroup_name')}, but Redshift Serverless "
                "maps the IAM identity to the database user itself. Clear the database user, or use a "
                "Secrets Manager secret."
            )
        if secret_arn and not SECRET_ARN_PATTERN.fullmatch(secret_arn):
            raise InvalidConnectionError(
                f"{prefix} {_label('secret_arn')} {secret_arn!r} is not a Secrets Manager secret ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>)."
            )
        if role_arn and not ROLE_ARN_PATTERN.fullmatch(role_arn):
            raise InvalidConnectionError(
                f"{prefix} {_label('role_arn')} {role_arn!r} is not an IAM role ARN "
                "(arn:aws:iam::<account>:role/<name>)."
            )

        endpoint_url = _text(extra, "endpoint_url")
        if endpoint_url and urlsplit(endpoint_url).scheme not in ("http", "https"):
            raise InvalidConnectionError(
                f"{prefix} {_label('endpoint_url')} {endpoint_url!r} is not an http(s) URL. "
                "Use for example https://vpce-...redshift-data.eu-west-1.vpce.amazonaws.com, or clear it."
            )

        return cls(
            conn_id=conn_id,
            access_key_id=access_key_id,
            has_secret_access_key=has_secret,
            region_name=region_name,
            cluster_identifier=cluster_identifier,
            workgroup_name=workgroup_name,
            db_user=db_user,
            database=_text(extra, "database"),
            secret_arn=secret_arn,
            role_arn=role_arn,
            endpoint_url=endpoint_url,
            allowed_applications=parse_application_list(extra.get("allowed_applications")),
        )


def mask_access_key(access_key_id: str | None) -> str:
    """Return an access key id with all but its last four characters hidden."""
    if not access_key_id:
        return "(none)"
    return f"...{access_key_id[-4:]}"


def is_loopback_host(host: str | None) -> bool:
    """Return True for ``localhost`` and loopback IP addresses."""
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PigmentConnectionSettings:
    """Validated settings of a ``pigment`` connection.

    :param conn_id: connection id.
    :param base_url: root URL of Pigment's API, without a trailing slash.
    :param api_key: Import API key.
    :param request_timeout: seconds per request, or None for the hook's default timeouts.
    :param key_expires_on: expiration date of the key (the key works until the day before), if known.
    """

    conn_id: str
    base_url: str
    api_key: str
    request_timeout: float | None
    key_expires_on: date | None

    def __repr__(self) -> str:
        return (
            f"PigmentConnectionSettings(conn_id={self.conn_id!r}, base_url={self.base_url!r}, api_key='***', "
            f"request_timeout={self.request_timeout!r}, key_expires_on={self.key_expires_on!r})"
        )

    @classmethod
    def from_connection(
        cls, conn_id: str, password: str | None, extra: Mapping[str, Any], *, default_base_url: str
    ) -> PigmentConnectionSettings:
        """Validate a ``pigment`` connection and return its settings.

        :param conn_id: connection id, for messages.
        :param password: the Import API key.
        :param extra: the connection's extra.
        :param default_base_url: base URL used when the field is empty.
        :raises InvalidConnectionError: naming the field to fix. The key never appears in messages.
        """
        warn_unknown_extra_keys(conn_id, extra, PIGMENT_EXTRA_KEYS)
        prefix = f"Connection {conn_id!r}:"

        api_key = password or ""
        if not api_key.strip():
            raise InvalidConnectionError(
                f"{prefix} 'Import API key' (password) is empty. Create an Import key in Pigment "
                "(Workspace Settings > API Keys) and paste it into the connection."
            )
        if api_key != api_key.strip() or re.search(r"[\s\"'`]", api_key):
            raise InvalidConnectionError(
                f"{prefix} 'Import API key' (password) contains spaces, line breaks or quote characters. "
                "Paste the key alone, without the quotes or blanks copied around it."
            )

        base_url = (_text(extra, "base_url") or default_base_url).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise InvalidConnectionError(
                f"{prefix} {_label('base_url')} {base_url!r} uses http:// to a non-loopback host, which would "
                "send the API key unencrypted. Use https://, for example https://pigment.app."
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidConnectionError(
                f"{prefix} {_label('base_url')} {base_url!r} is not an https URL. Use for example https://pigment.app."
            )

        request_timeout: float | None = None
        raw_timeout = extra.get("request_timeout")
        if raw_timeout not in (None, ""):
            try:
                request_timeout = float(raw_timeout)
            except (TypeError, ValueError):
                request_timeout = -1.0
            if request_timeout <= 0:
                raise InvalidConnectionError(
                    f"{prefix} {_label('request_timeout')} {raw_timeout!r} is not a positive number of "
                    "seconds. Use for example 300, or clear it for the default."
                )

        key_expires_on: date | None = None
        raw_expiry = _text(extra, "key_expires_on")
        if raw_expiry:
            try:
                key_expires_on = date.fromisoformat(raw_expiry[:10])
            except ValueError:
                raise InvalidConnectionError(
                    f"{prefix} {_label('key_expires_on')} {raw_expiry!r} is not a date. Use YYYY-MM-DD, "
                    "for example 2027-07-01."
                ) from None

        return cls(
            conn_id=conn_id,
            base_url=base_url,
            api_key=api_key,
            request_timeout=request_timeout,
            key_expires_on=key_expires_on,
        )
