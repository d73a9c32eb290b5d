"""Errors raised by the Wayfront (formerly Service Provider Pro, SPP) provider, rooted at :class:`SppError`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "SppApiError",
    "SppAttachmentUnavailableError",
    "SppAuthError",
    "SppConfigError",
    "SppError",
    "SppInputError",
    "SppNotFoundError",
    "SppRateLimitError",
    "SppServerError",
    "SppStateStoreError",
    "SppTransportError",
    "SppUnexpectedResponseError",
    "SppValidationError",
    "api_error_class",
]


class SppError(Exception):
    """Base class of every error the Wayfront (formerly Service Provider Pro, SPP) provider raises.

    Each says what trying again would do.

    ``retryable``: trying the same thing again later can succeed. ``outcome_unknown``: the server may
    have acted on the request although no answer said so. ``permanent``: no wait or retry can fix it
    (fail the task without retries, end a wait). A subclass sets the first two; the third follows.
    """

    #: Trying the same thing again later can succeed.
    retryable: bool = False

    @property
    def outcome_unknown(self) -> bool:
        """The server may have acted on the request although no answer said so."""
        return False

    @property
    def permanent(self) -> bool:
        """No retry or wait can fix this error: fail without retries."""
        return not self.retryable and not self.outcome_unknown


class SppConfigError(SppError, ValueError):
    """The SPP connection is unusable (no host, no token, insecure URL...); raised before any request."""

    @property
    def permanent(self) -> bool:
        """Wrong settings or arguments stay wrong however often they are tried."""
        return True


class SppInputError(SppError, ValueError):
    """A call argument is invalid (empty message, missing file...); raised before any request."""

    @property
    def permanent(self) -> bool:
        """Wrong settings or arguments stay wrong however often they are tried."""
        return True


class SppAttachmentUnavailableError(SppError):
    """An attachment in object storage could not be checked or opened for a reason that may pass.

    A network error, a timeout or throttling while asking ``s3://``/``gs://`` about a file is not a
    missing file: unlike :class:`SppInputError`, trying again later can succeed. Nothing was sent to SPP.
    """

    retryable = True
    #: Raised before the request went out, so nothing can have been created.
    request_sent = False


class SppStateStoreError(SppError):
    """Airflow's task state store could not be read or written; the try fails (and is retried) unposted."""

    retryable = True


class SppTransportError(SppError):
    """The request failed below HTTP: host unreachable, timeout, connection dropped."""

    def __init__(self, message: str, *, request_sent: bool, retryable: bool = True) -> None:
        super().__init__(message)
        #: False only when the request certainly never reached the server (connect failed).
        self.request_sent = request_sent
        #: False when trying again cannot help (a TLS certificate that does not verify).
        self.retryable = retryable

    @property
    def outcome_unknown(self) -> bool:
        """True when the server may have acted on the request although no answer arrived."""
        return self.request_sent


class SppApiError(SppError):
    """Wayfront (SPP) answered with an error status (or a 2xx that is not what the API documents)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        server_message: str | None = None,
        errors: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        #: The ``X-Api-Identifier`` response header: quote it to SPP support.
        self.request_id = request_id
        self.server_message = server_message
        #: Laravel's per-field validation messages, e.g. ``{"message": ["The message field is required."]}``.
        self.errors = errors or {}
        #: Seconds the server asked us to wait (``Retry-After``), when it said.
        self.retry_after = retry_after

    @property
    def outcome_unknown(self) -> bool:
        """True when the server may have acted despite the error: any 5xx (Laravel answers 500 for an
        exception thrown after the INSERT; a gateway answers 502/503/504 while the app finishes)."""
        return self.status_code >= 500


class SppValidationError(SppApiError):
    """400 or 422: SPP rejected the request's content."""


class SppAuthError(SppApiError):
    """401 or 403: the API token is wrong, revoked, or lacks the permission."""


class SppNotFoundError(SppApiError):
    """404: the order (or message) does not exist in this workspace."""


class SppRateLimitError(SppApiError):
    """429: too many requests; wait ``retry_after`` seconds."""

    retryable = True


class SppServerError(SppApiError):
    """5xx: SPP or a gateway in front of it failed."""

    retryable = True


class SppUnexpectedResponseError(SppApiError):
    """A 2xx answer whose body is not what the API documents (not JSON, no ``id``...)."""

    @property
    def outcome_unknown(self) -> bool:
        """A 2xx means the server acted, so whatever it created exists."""
        return True


_STATUS_CLASSES: dict[int, type[SppApiError]] = {
    400: SppValidationError,
    401: SppAuthError,
    403: SppAuthError,
    404: SppNotFoundError,
    422: SppValidationError,
    429: SppRateLimitError,
}


def api_error_class(status_code: int) -> type[SppApiError]:
    """Return the exception class that stands for an HTTP error status."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return SppServerError
    if 200 <= status_code < 300:
        return SppUnexpectedResponseError
    return SppApiError
