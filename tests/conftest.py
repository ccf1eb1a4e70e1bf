"""Shared test wiring: pytester for the plugin tests (jobforge's fixtures come from its plugin)."""

from __future__ import annotations

pytest_plugins = ["pytester"]
