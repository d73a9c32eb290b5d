"""Operators of the SPP provider: post a message to an order (or one to each of many orders), exactly once.

    from airflow_provider_spp.operators import CreateOrderMessageOperator, ConcealedBytes
    from airflow_provider_spp.operators import CreateOrderMessagesInBulkOperator

Names load on first use, so importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_spp.operators.bulk_order_messages import CreateOrderMessagesInBulkOperator
    from airflow_provider_spp.operators.order_messages import ConcealedBytes, CreateOrderMessageOperator

__all__ = ["ConcealedBytes", "CreateOrderMessageOperator", "CreateOrderMessagesInBulkOperator"]


def __getattr__(name: str) -> Any:
    """Import public names on first use."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "CreateOrderMessagesInBulkOperator":
        from airflow_provider_spp.operators import bulk_order_messages

        return bulk_order_messages.CreateOrderMessagesInBulkOperator
    from airflow_provider_spp.operators import order_messages

    return getattr(order_messages, name)
