"""The jobforge pytest plugin (entry point `pytest11`: `jobforge.plugins.pytest.plugin`)."""
