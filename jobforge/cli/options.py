"""Options, and their help, that more than one command of the CLI declares."""

from __future__ import annotations

#: What every command's --database-url help says of its default.
DEFAULT_HELP = (
    "default: $JOBFORGE_DATABASE_URL, else the development server of this project "
    "(`jobforge db start`)"
)
