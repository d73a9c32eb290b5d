"""What SppHook and SppAsyncHook share: the connection, its per-hook overrides, and the page types they read."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_spp._internal.connection import SppConnectionSettings, settings_from_connection
from airflow_provider_spp._internal.connection_form import DISPLAY_NAME
from airflow_provider_spp.models import MessagePage, OrderPage

if TYPE_CHECKING:
    from airflow_provider_spp._internal.client import Answer

__all__ = ["PageT", "SppHookBase"]

#: A page of a listing, as either hook reads it.
PageT = TypeVar("PageT", MessagePage, OrderPage)


class SppHookBase(BaseHook):
    """What both SPP hooks take: the connection and the per-hook overrides of its settings."""

    conn_name_attr = "spp_conn_id"
    default_conn_name = "spp_default"
    conn_type = "spp"
    hook_name = DISPLAY_NAME

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spp_conn_id={self.spp_conn_id!r})"

    def _settings_from(self, conn: Any, extra: dict[str, Any]) -> SppConnectionSettings:
        """Validate a connection with this hook's overrides; raises SppConfigError when it is unusable."""
        return settings_from_connection(
            host=conn.host,
            port=conn.port,
            password=conn.password,
            extra=extra,
            api_version=self.api_version,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

    @property
    def server_time(self) -> datetime | None:
        """The server's clock (its ``Date`` header) as of the latest answer, when it sent one."""
        http = getattr(self, "_http", None)
        return http.server_time if http is not None else None

    def _note_gone(self, message_id: int, answer: Answer) -> None:
        """Log a delete's 404 that followed a lost answer: the lost try did the deleting."""
        if answer.status == 404:
            self.log.info(
                "SPP message %d is gone (404) after a try whose answer was lost: that try deleted it", message_id
            )
