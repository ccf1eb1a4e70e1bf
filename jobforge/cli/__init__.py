"""The `jobforge` command: glue over the library, nothing else."""
