"""Connector names and where a connector config may come from besides the database: the bottom
of the layers, so the queue (which stores configs), the runtime (which hands them to runners)
and the CLI read one definition."""

from __future__ import annotations

import re

#: Connector names as the connector_configs table accepts them (migrations/0002).
CONNECTOR_NAME = re.compile(r"[a-z0-9._-]{1,128}")

#: The prefix of the environment variables a connector config may come from.
ENV_PREFIX = "JOBFORGE_CONNECTOR_"


def connector_env_var(name: str) -> str:
    """The environment variable a connector config may come from: ``JOBFORGE_CONNECTOR_`` and
    the name upper-cased, with ``.`` and ``-`` as ``_`` (``hooks.acme`` -> ``..._HOOKS_ACME``)."""
    return ENV_PREFIX + re.sub(r"[.-]", "_", name).upper()
