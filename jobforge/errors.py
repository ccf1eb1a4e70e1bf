"""The exception hierarchy. Standard library only.

Every error a user can reach derives from `JobforgeError` and carries a message that names the
problem (a file, a host and port, a setting), so the CLI can print it without a traceback.
A class docstring doubles as the default message.
"""

from __future__ import annotations


class JobforgeError(Exception):
    """jobforge failed."""

    #: Process exit code the CLI uses for this error (DESIGN §3: 1 check failed, 2 usage/config).
    exit_code: int = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(JobforgeError):
    """The configuration is invalid."""

    exit_code = 2


#: What installs the test stack (pytest, hypothesis, syrupy, deepdiff, testcontainers): golden
#: cases, certify, replay and the Docker provider need it; `pip install jobforge` has none of it.
TEST_STACK_INSTALL = "pip install 'jobforge[testing]'"


class MissingTestStack(ConfigurationError, ImportError):
    """This needs the test stack: pip install 'jobforge[testing]'."""

    # Also an ImportError, so `except ImportError` (pytest.importorskip among them) sees a
    # core-only install as the missing package it is.

    @classmethod
    def needed_by(cls, feature: str, missing: ImportError) -> MissingTestStack:
        """One line: what needs the test stack, the package that is not there, what to install."""
        if isinstance(missing, ModuleNotFoundError) and missing.name:
            why = f"{missing.name.partition('.')[0]} is not installed"
        else:
            why = (str(missing).strip().splitlines() or [type(missing).__name__])[0]
        return cls(f"{feature} needs the test stack ({why}): {TEST_STACK_INSTALL}")


class DatabaseUnreachable(ConfigurationError):
    """The database server could not be reached."""


class SchemaNotReady(ConfigurationError):
    """The database has no jobforge schema, or an outdated one: run `jobforge migrate`."""


class ProvisionError(JobforgeError):
    """No throwaway Postgres server could be provisioned."""

    exit_code = 2


class MigrationError(JobforgeError):
    """A migration could not be applied; it was rolled back."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration's file changed since it was applied."""


class QueueError(JobforgeError):
    """The queue refused an operation."""


class IdempotencyConflict(QueueError):
    """The idempotency key is already used by a job with a different payload."""


class InvalidTransition(QueueError):
    """The job is not in a state that allows this operation."""


class TenantRequired(QueueError):
    """No tenant is set for this operation."""

    exit_code = 2


class JobNotFound(QueueError):
    """No such job (for this tenant)."""


class RunNotFound(JobforgeError):
    """No recorded run matches (for this tenant)."""

    # exit_code stays 1, as for JobNotFound: what was asked for is not there; nothing typed is
    # wrong.


class ArtifactError(JobforgeError):
    """An artifact cannot be stored or read back (exit 1: what was asked for is not there, or
    not as it was written)."""


class ArtifactNotFound(ArtifactError):
    """No stored blob (or no artifact of that name) for the tenant."""


class ArtifactCorrupt(ArtifactError):
    """The bytes read back do not hash to the sha256 they are stored under."""


class PayloadTooLarge(QueueError):
    """The payload is over the size limit."""


class InvalidJob(QueueError):
    """The job's fields are invalid."""

    exit_code = 2


class FeatureDisabled(QueueError):
    """A feature behind a flag (schedules, events, triggers) is off for the tenant
    (`jobforge features enable`)."""

    exit_code = 2


class RunnerDisabled(QueueError):
    """The runner is disabled in the runner catalogue: it cannot be requested (SQLSTATE JF010)."""


class CatalogueConflict(QueueError):
    """A catalogue sync would downgrade a runner, or change its contract under the same
    version (SQLSTATE JF011): refused unless forced."""

    exit_code = 1


class ConnectorInvalid(QueueError):
    """A connector config the database refuses: its name, not an object, too large (JF015)."""

    exit_code = 2


class UnknownRunner(QueueError):
    """The runner id is not in the runner catalogue (nor, for the CLI, in the repo's code)."""

    exit_code = 2


class QueueLimited(QueueError):
    """A claim held to one tenant (an agent's, migrations/0023) would take jobs a queue limit
    applies to: those are claimed by workers, whose claim keeps the limit's accounting
    (SQLSTATE JF017)."""


class SigningKeyConflict(QueueError):
    """A signing key id already names another public key of the tenant, or the public key is
    registered under another id, or a revoked key was to be rotated (SQLSTATE JF012)."""


class TokenReplayed(QueueError):
    """A policy token's jti was already used by another job of the tenant (SQLSTATE JF013)."""


class LeaseLost(QueueError):
    """The worker no longer holds this job's lease: its write was not applied."""


#: SQLSTATEs raised by jobforge's SQL functions (migrations/0003) and the error each becomes.
SQLSTATE_ERRORS: dict[str, type[QueueError]] = {
    "JF001": IdempotencyConflict,
    "JF002": InvalidTransition,
    "JF003": TenantRequired,
    "JF004": JobNotFound,
    "JF005": PayloadTooLarge,
    "JF006": InvalidJob,
    "JF007": FeatureDisabled,
    "JF010": RunnerDisabled,
    "JF011": CatalogueConflict,
    "JF012": SigningKeyConflict,
    "JF013": TokenReplayed,
    "JF015": ConnectorInvalid,
    "JF017": QueueLimited,
}


class NonRetryable(JobforgeError):
    """The job failed in a way another attempt cannot fix; raise it from a handler."""

    def __init__(self, message: str | None = None, *, details: object = None) -> None:
        super().__init__(message)
        #: JSON-able particulars (e.g. validation errors), recorded with the job's error.
        self.details = details


class InvalidInput(NonRetryable):
    """The job's payload is not valid input for its handler."""


class JobRefused(NonRetryable):
    """The worker refused to run the job: its signatures or its policy token do not hold."""

    def __init__(self, message: str | None = None, *, reason: str,
                 key_id: str | None = None) -> None:  # fmt: skip
        super().__init__(message, details={"reason": reason,
                                           **({"key_id": key_id} if key_id else {})})  # fmt: skip
        #: A stable code (`bad_signature`, `token_scope`, ...): docs/trust.md lists them.
        self.reason = reason
        self.key_id = key_id


class WorkerStopped(JobforgeError):
    """The worker stopped taking work."""


class CanonicalError(JobforgeError):
    """The value cannot be turned into canonical JSON."""

    # exit_code stays 1: the value a runner or a file handed over failed a check; nothing the
    # user typed on the command line or wrote in the configuration is wrong.

    def __init__(self, message: str | None = None, *, path: str | None = None) -> None:
        super().__init__(message)
        #: Where in the value the problem is, as a JSONPath (`$`, `$.items[2].when`), if known.
        self.path = path


class ContractViolation(NonRetryable):
    """A run broke its runner's contract (output, trace keys, artifacts or decision values)."""


class HttpRefused(NonRetryable):
    """The recorded HTTP client's SSRF guard refused a request (see HttpPolicy.allow_hosts)."""


class HttpResponseTooLarge(NonRetryable):
    """A response to the recorded HTTP client was over HttpPolicy.max_response_bytes."""


class UnrecordedRequest(NonRetryable):
    """Replay got an HTTP request that matches no recorded exchange."""


class ConnectorNotFound(NonRetryable):
    """A runner asked for a connector config its tenant does not have (`ctx.connector`)."""


class JobforgeWarning(UserWarning):
    """Something a passing check still wants a reader to know (shown in pytest's summary)."""


class StrictModeWarning(JobforgeWarning):
    """A runner read something that differs between machines (environment, host name)."""


class NotComparedWarning(JobforgeWarning):
    """A redacted expectation that could not be held against the run."""
