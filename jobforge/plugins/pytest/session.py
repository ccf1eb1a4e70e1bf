"""The plugin's per-process state is the provisioning session (no pytest in it)."""

from __future__ import annotations

from jobforge.session import PluginSession, Settings

__all__ = ["PluginSession", "Settings"]
