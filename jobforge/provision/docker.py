"""A throwaway server in a container, through testcontainers, when a Docker engine answers.

testcontainers and docker are imported lazily: importing them costs ~0.2 s, and most machines
that run jobforge (CI runners without an engine) never need them. With no engine the client
fails within milliseconds; we probe with a short timeout and fall through silently. Both are part
of the test stack (`jobforge[testing]`): a core install has neither, and says so when asked for
the Docker provider.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobforge import errors

DEFAULT_IMAGE = "postgres:16-alpine"
PROBE_TIMEOUT_S = 2


def _engine_configured() -> str | None:
    """Where a Docker engine may be, without importing docker-py (~0.2 s): None when nowhere.

    testcontainers finds its engine through TESTCONTAINERS_HOST_OVERRIDE / tc.host, DOCKER_HOST,
    the docker CLI's current context, or the default socket; with none of them set up there is
    nothing to ask.
    """
    home = Path.home()
    if os.environ.get("DOCKER_HOST") or os.environ.get("TESTCONTAINERS_HOST_OVERRIDE"):
        return "DOCKER_HOST"
    properties = home / ".testcontainers.properties"
    if properties.is_file() and "tc.host" in properties.read_text(errors="replace"):
        return str(properties)
    try:
        context = json.loads((home / ".docker" / "config.json").read_text()).get("currentContext")
    except (OSError, ValueError, AttributeError):
        context = None
    if context and context != "default":
        return f"docker context {context}"
    for socket in (Path("/var/run/docker.sock"), home / ".docker" / "run" / "docker.sock"):
        if socket.exists():
            return str(socket)
    return None


def engine_status() -> tuple[bool, str]:
    """Whether a Docker engine answers within PROBE_TIMEOUT_S, and why not."""
    if _engine_configured() is None:
        return False, "no Docker engine configured (no DOCKER_HOST, context or socket)"
    # docker-py leaks its socket when the engine is absent (the client's constructor raises before
    # anything can close it); collect it here, quietly, rather than in some later test's teardown.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        result = _probe()
        gc.collect()
    return result


def _probe() -> tuple[bool, str]:
    try:
        import docker
    except ImportError:
        return False, f"the docker Python package is not installed ({errors.TEST_STACK_INSTALL})"
    if importlib.util.find_spec("testcontainers") is None:
        return False, f"testcontainers is not installed ({errors.TEST_STACK_INSTALL})"
    try:
        client = docker.from_env(timeout=PROBE_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # docker raises DockerException, requests errors, OSError...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return False, f"no Docker engine answered ({reason[:160]})"
    return True, "a Docker engine answered"


@dataclass
class DockerServer:
    container: Any
    url: str
    image: str
    origin: str = "docker"
    started_in_s: float = 0.0

    @property
    def dsn(self) -> str:
        return self.url

    def describe(self) -> str:
        return f"a {self.image} container (testcontainers)"

    def stop(self) -> None:
        self.container.stop()


def start_docker(image: str | None = None) -> DockerServer:
    """Start a container with the same test-server settings as a local server."""
    began = time.perf_counter()
    image = image or os.environ.get("JOBFORGE_DOCKER_IMAGE", DEFAULT_IMAGE)
    try:  # testcontainers 4.15 moved the module (the old path warns); older ones have only it
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        try:
            from testcontainers.postgres import PostgresContainer
        except ImportError as exc:
            raise errors.MissingTestStack.needed_by("provider 'docker'", exc) from None
    try:
        container = PostgresContainer(
            image, username="postgres", password="postgres", dbname="postgres", driver=None
        ).with_command(
            "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c TimeZone=UTC -c max_connections=200 -c jit=off"
        )
        container.start()
    except Exception as exc:  # the engine answered a probe but could not start the container
        raise errors.ProvisionError(
            f"a Docker engine answered, but starting {image} failed: {exc}; "
            "set JOBFORGE_PROVIDER=local to use local Postgres binaries instead"
        ) from None
    url = container.get_connection_url()
    return DockerServer(container, url, image, started_in_s=time.perf_counter() - began)
