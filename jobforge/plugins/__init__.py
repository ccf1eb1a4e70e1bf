"""Integrations with other tools (glue only)."""
