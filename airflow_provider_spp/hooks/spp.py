"""SppHook: the SPP connection and the HTTP calls of its API, with retries that never duplicate a POST."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseHook
from pydantic import BaseModel, ValidationError

from airflow_provider_spp import __version__
from airflow_provider_spp.attachments import AttachmentLike, multipart_encoder, prepare_attachments
from airflow_provider_spp.connection import SppConnectionSettings, settings_from_connection
from airflow_provider_spp.exceptions import (
    SppApiError,
    SppError,
    SppInputError,
    SppTransportError,
    SppUnexpectedResponseError,
    api_error_class,
)
from airflow_provider_spp.idempotency import as_utc, is_same_post, text_digest
from airflow_provider_spp.models import (
    MessagePage,
    MessageResource,
    Order,
    OrderMessageRequest,
    OrderPage,
    order_reference,
)
from airflow_provider_spp.transport import (
    BearerAuth,
    backoff_wait,
    laravel_error,
    next_page_number,
    parse_retry_after,
    path_segment,
    request_written,
    should_retry,
    streaming_adapter_class,
    transport_error,
)

if TYPE_CHECKING:
    import requests
    from tenacity import RetryCallState

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Stop following ``links.next`` after this many pages: a server that loops must not hang a task.
MAX_PAGES = 1000


def _validation_problems(err: ValidationError) -> str:
    """Pydantic's errors as 'field: problem' text, without echoing the input (it may be a client's text)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in err.errors()
    )


def order_message_request(
    order: str | int, message: str, *, user_id: int | str | None = None, staff_only: bool | str | None = None
) -> OrderMessageRequest:
    """Validate what a caller asks to post, raising SppInputError with every problem at once."""
    try:
        return OrderMessageRequest.model_validate(
            {"order": order, "message": message, "user_id": user_id, "staff_only": staff_only}
        )
    except ValidationError as err:
        raise SppInputError(f"Invalid SPP order message: {_validation_problems(err)}") from None


def _order(order: str | int) -> str:
    """Validate an order ID or number on its own, as SppInputError."""
    try:
        return order_reference(order)
    except ValueError as err:
        raise SppInputError(str(err)) from None


def _page_size(per_page: int) -> int:
    """SPP pages hold 1 to 100 items."""
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= 100:
        raise SppInputError(f"per_page must be an integer from 1 to 100, got {per_page!r}")
    return per_page


class SppHook(BaseHook):
    """
    Talk to a Service Provider Pro (SPP) workspace's REST API.

    :param spp_conn_id: Airflow connection of type ``spp``: host is the workspace URL, password the API token.
    :param api_version: Sent as ``X-Api-Version``; overrides the connection extra ``api_version``.
    :param timeout: Longest silence, in seconds, while waiting for SPP's answer (before its first byte
        and between reads); overrides the connection extra ``timeout`` (default 30). Not a limit on a
        whole call: the connection extra ``connect_timeout`` (default 10) bounds opening the connection.
    :param max_retries: Retries of rate-limited or unavailable calls; overrides the extra (default 3).
    """

    conn_name_attr = "spp_conn_id"
    default_conn_name = "spp_default"
    conn_type = "spp"
    hook_name = "Service Provider Pro (SPP)"

    def __init__(
        self,
        spp_conn_id: str = default_conn_name,
        *,
        api_version: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spp_conn_id = spp_conn_id
        self.api_version = api_version
        self.timeout = timeout
        self.max_retries = max_retries
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spp_conn_id={self.spp_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow before 3.2 (3.2+ reads it from get_provider_info)."""
        from airflow_provider_spp.provider_info import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection form fields for Airflow before 3.2 (needs wtforms, absent from 3.3)."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import BooleanField, IntegerField, StringField
            from wtforms.validators import NumberRange, Optional
        except ImportError:
            return {}
        return {
            "api_version": StringField(lazy_gettext("API version"), widget=BS3TextFieldWidget()),
            "timeout": IntegerField(
                lazy_gettext("Read timeout (seconds)"),
                validators=[Optional(), NumberRange(min=1)],
                widget=BS3TextFieldWidget(),
                default=30,
            ),
            "connect_timeout": IntegerField(
                lazy_gettext("Connect timeout (seconds)"),
                validators=[Optional(), NumberRange(min=1)],
                widget=BS3TextFieldWidget(),
                default=10,
            ),
            "max_retries": IntegerField(
                lazy_gettext("Max retries"),
                validators=[Optional(), NumberRange(min=0)],
                widget=BS3TextFieldWidget(),
                default=3,
            ),
            "retry_max_time": IntegerField(
                lazy_gettext("Retry time cap (seconds)"),
                validators=[Optional(), NumberRange(min=0)],
                widget=BS3TextFieldWidget(),
                default=120,
            ),
            "retry_backoff": IntegerField(
                lazy_gettext("Retry backoff base (seconds)"),
                validators=[Optional(), NumberRange(min=0)],
                widget=BS3TextFieldWidget(),
                default=1,
            ),
            "verify": BooleanField(lazy_gettext("Verify TLS certificates"), default=True),
            "allow_insecure_http": BooleanField(lazy_gettext("Allow plain http to a remote host"), default=False),
        }

    @cached_property
    def settings(self) -> SppConnectionSettings:
        """The validated connection; raises SppConfigError (before any request) when it is unusable."""
        conn = self.get_connection(self.spp_conn_id)
        settings = settings_from_connection(
            host=conn.host,
            port=conn.port,
            password=conn.password,
            extra=conn.extra_dejson,
            api_version=self.api_version,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )
        try:
            from airflow.providers.common.compat.sdk import mask_secret

            mask_secret(settings.token)
        except ImportError:  # pragma: no cover - every supported Airflow has it
            pass
        return settings

    def get_conn(self) -> requests.Session:
        """The hook's pooled HTTP session, created on first use and reused for every call."""
        if self._session is None:
            import requests

            session = requests.Session()
            session.auth = BearerAuth(self.settings.token)
            session.verify = self.settings.verify
            session.headers.update(
                {
                    "Accept": "application/json",
                    "User-Agent": f"airflow-provider-spp/{__version__} python-requests/{requests.__version__}",
                }
            )
            if self.settings.api_version:
                session.headers["X-Api-Version"] = self.settings.api_version
            adapter = streaming_adapter_class()(pool_connections=4, pool_maxsize=8, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> SppHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- API calls ---------------------------------------------------------------------------------------

    def create_order_message(
        self,
        order: str | int,
        message: str,
        *,
        user_id: int | str | None = None,
        staff_only: bool | str | None = None,
        attachments: Iterable[AttachmentLike] | None = None,
    ) -> MessageResource:
        """Post a message (with optional files, streamed) to an order; the POST is never blindly re-sent."""
        request = order_message_request(order, message, user_id=user_id, staff_only=staff_only)
        files = prepare_attachments(attachments)
        url = self._url("api", "order_messages", request.order)
        if files:
            fields = request.form_fields()
            response = self._request(
                "POST", url, body=lambda stack: multipart_encoder(fields, files, stack), idempotent=False
            )
        else:
            response = self._request("POST", url, json=request.json_body(), idempotent=False)
        return self._parse(MessageResource, response)

    def list_order_messages(self, order: str | int, *, per_page: int = 100) -> Iterator[MessageResource]:
        """Yield an order's messages newest first, following ``links.next`` across pages."""
        url = self._url("api", "order_messages", _order(order))
        for page in self._pages(url, {"limit": _page_size(per_page)}, MessagePage):
            yield from page.data

    def find_order_message(
        self,
        order: str | int,
        message: str,
        *,
        created_since: datetime,
        user_id: int | str | None = None,
        staff_only: bool | str | None = None,
    ) -> MessageResource | None:
        """Find a message with this text (and sender/visibility, when given) created since a moment."""
        wanted = order_message_request(order, message, user_id=user_id, staff_only=staff_only)
        digest = text_digest(wanted.message)
        return self.find_order_message_where(
            wanted.order,
            lambda candidate: is_same_post(candidate, digest, wanted.user_id, wanted.staff_only),
            created_since=created_since,
        )

    def find_order_message_where(
        self, order: str | int, matches: Callable[[MessageResource], bool], *, created_since: datetime
    ) -> MessageResource | None:
        """The newest message of an order, created since a moment, for which ``matches`` is true.

        Pages are read until a message older than the moment shows up in a list seen to be newest
        first; a list in any other order is read to its end.
        """
        since = as_utc(created_since)
        previous_id: int | None = None
        newest_first: bool | None = None
        for candidate in self.list_order_messages(order):
            if previous_id is not None and newest_first is None and candidate.id != previous_id:
                newest_first = candidate.id < previous_id
            previous_id = candidate.id
            if candidate.created_at is not None and as_utc(candidate.created_at) < since:
                if newest_first:
                    return None
                continue
            if matches(candidate):
                return candidate
        return None

    def delete_order_message(self, message_id: int) -> None:
        """Delete one message by its ID (not the order's); a 404 after a lost answer means it is deleted."""
        if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id <= 0:
            raise SppInputError(f"message_id must be a positive integer, got {message_id!r}")
        response = self._request("DELETE", self._url("api", "order_messages", message_id), gone_is_done=True)
        if response.status_code == 404:
            self.log.info(
                "SPP message %d is gone (404) after a try whose answer was lost: that try deleted it", message_id
            )

    def get_order(self, order: str | int) -> Order:
        """Retrieve one order by ID or order number."""
        url = self._url("api", "orders", _order(order))
        return self._parse(Order, self._request("GET", url))

    def list_orders(self, *, status: str | None = None, sort: str = "id:desc", per_page: int = 100) -> Iterator[Order]:
        """Yield the workspace's orders (optionally of one status), across pages."""
        params: dict[str, Any] = {"limit": _page_size(per_page), "sort": sort}
        if status is not None:
            params["filters[status][$eq]"] = status
        for page in self._pages(self._url("api", "orders"), params, OrderPage):
            yield from page.data

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: one cheap, side-effect-free authenticated GET."""
        try:
            base_url = self.settings.base_url
            self._request("GET", self._url("api", "orders"), params={"limit": 1}, retries=False)
        except SppApiError as err:
            if err.status_code in (401, 403):
                return False, (
                    f"{base_url} rejected the API token ({err.status_code}"
                    f"{': ' + err.server_message if err.server_message else ''}). "
                    "Check the API token field and that the token's user may read orders."
                )
            return False, f"{base_url} answered {err.status_code}: {err}"
        except SppTransportError as err:
            return False, f"Could not reach {self.settings.base_url}: {err}. Check the workspace URL."
        except SppError as err:
            return False, str(err)
        return True, f"Connected to the SPP workspace at {base_url}."

    # -- HTTP plumbing -------------------------------------------------------------------------------------

    def _url(self, *segments: str | int) -> str:
        """Absolute URL under the workspace, each segment percent-encoded on its own."""
        return "/".join([self.settings.base_url, *(path_segment(s) for s in segments)])

    def _pages(self, url: str, params: dict[str, Any], model: type[ModelT]) -> Iterator[ModelT]:
        """Follow Laravel pagination: every page with the first request's query, only the page number changed.

        A ``next`` link (Laravel's carries ``?page=N`` alone) says which page comes next, nothing more; one
        that leaves the workspace is refused, and a page number seen before ends the listing.
        """
        seen = {int(params.get("page", 1))}
        query = params
        for _ in range(MAX_PAGES):
            response = self._request("GET", url, params=query)
            page = self._parse(model, response, unwrap=False)
            yield page
            link = getattr(getattr(page, "links", None), "next", None)
            if not link:
                return
            try:
                number = next_page_number(link, response.url, self.settings.base_url)
            except ValueError as err:
                raise SppUnexpectedResponseError(
                    f"SPP's next-page link {err}; not following it",
                    status_code=response.status_code,
                    request_id=response.headers.get("X-Api-Identifier"),
                ) from None
            if number in seen:
                return
            seen.add(number)
            query = {**params, "page": number}

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        body: Callable[[ExitStack], Any] | None = None,
        idempotent: bool = True,
        retries: bool = True,
        gone_is_done: bool = False,
    ) -> requests.Response:
        """Send one API call, retrying only what cannot create a second copy of anything.

        With ``gone_is_done`` (a DELETE), a 404 on a retry after an answer that was lost is returned
        rather than raised: the lost try may have removed the resource.
        """
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_before_delay

        path = urlsplit(url).path
        #: Whether an earlier attempt of this call may have been acted on although its answer was lost.
        answer_lost = False

        def send_once() -> requests.Response:
            import requests

            session = self.get_conn()
            with ExitStack() as stack:
                data = body(stack) if body else None
                headers = {"Content-Type": data.content_type} if data is not None else None
                request_written.set(False)
                try:
                    response = session.request(
                        method,
                        url,
                        params=params,
                        json=json,
                        data=data,
                        headers=headers,
                        timeout=(self.settings.connect_timeout, self.settings.timeout),
                        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE.
                        verify=self.settings.verify,
                        allow_redirects=idempotent,
                    )
                except requests.RequestException as err:
                    raise transport_error(err, method, path, written=request_written.get()) from None
            if not (gone_is_done and answer_lost and response.status_code == 404):
                self._raise_for_status(response, method, urlsplit(response.url).path or path)
            return response

        def attempt() -> requests.Response:
            nonlocal answer_lost
            try:
                return send_once()
            except (SppTransportError, SppApiError) as err:
                answer_lost = answer_lost or err.outcome_unknown
                raise

        settings = self.settings
        retrying = Retrying(
            stop=stop_after_attempt((settings.max_retries if retries else 0) + 1)
            | stop_before_delay(settings.retry_max_time),
            wait=self._retry_wait,
            retry=retry_if_exception(lambda err: should_retry(err, idempotent=idempotent)),
            before_sleep=lambda state: self._log_retry(state, method, path),
            reraise=True,
        )
        return retrying(attempt)

    def _retry_wait(self, state: RetryCallState) -> float:
        """Retry-After when the server gave one, else exponential backoff with jitter."""
        err = state.outcome.exception() if state.outcome else None
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return backoff_wait(state.attempt_number, self.settings.retry_backoff)

    def _log_retry(self, state: RetryCallState, method: str, path: str) -> None:
        """One warning per retry: what failed, the request id, and how long we wait."""
        err = state.outcome.exception() if state.outcome else None
        what = f"answered {err.status_code}" if isinstance(err, SppApiError) else f"failed ({err})"
        request_id = getattr(err, "request_id", None)
        self.log.warning(
            "SPP %s %s %s (request id %s); retry %d of %d in %.1f s",
            method,
            path,
            what,
            request_id or "none",
            state.attempt_number,
            self.settings.max_retries,
            state.upcoming_sleep,
        )

    @staticmethod
    def _raise_for_status(response: requests.Response, method: str, path: str) -> None:
        """Turn an unexpected status into the matching SppApiError, with the server's own message."""
        status = response.status_code
        if 200 <= status < 300:
            return
        request_id = response.headers.get("X-Api-Identifier")
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).netloc or "another address"
            raise SppApiError(
                f"SPP {method} {path} was redirected ({status}) to {target}; "
                "set the connection host to the workspace's final URL",
                status_code=status,
                request_id=request_id,
            )
        server_message, errors = laravel_error(response)
        detail = server_message or response.reason or "no message"
        if errors:
            detail += " " + "; ".join(
                f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()
            )
        raise api_error_class(status)(
            f"SPP {method} {path} failed with {status}: {detail} (request id {request_id or 'none'})",
            status_code=status,
            request_id=request_id,
            server_message=server_message,
            errors=errors,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    @staticmethod
    def _parse(model: type[ModelT], response: requests.Response, *, unwrap: bool = True) -> ModelT:
        """Parse a success body into a model, accepting a ``{"data": {...}}`` wrapper."""
        request_id = response.headers.get("X-Api-Identifier")
        path = urlsplit(response.url).path
        try:
            payload = response.json()
        except ValueError:
            raise SppUnexpectedResponseError(
                f"SPP answered {response.status_code} to {path} but the body is not JSON "
                f"(request id {request_id or 'none'})",
                status_code=response.status_code,
                request_id=request_id,
            ) from None
        if unwrap and isinstance(payload, dict) and "id" not in payload and isinstance(payload.get("data"), dict):
            payload = payload["data"]
        try:
            return model.model_validate(payload)
        except ValidationError as err:
            raise SppUnexpectedResponseError(
                f"SPP answered {response.status_code} to {path} with a body that is not a {model.__name__} "
                f"({_validation_problems(err)}; request id {request_id or 'none'})",
                status_code=response.status_code,
                request_id=request_id,
            ) from None
