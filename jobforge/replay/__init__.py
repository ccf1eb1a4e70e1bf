"""Replay of recorded runs: bundles (export and import), the replay engine, divergence reports."""
