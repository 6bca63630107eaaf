"""The Paywall and Bambora process tests again, with a PostgreSQL ledger shared by the worker,
the receiver and beat."""

from __future__ import annotations

from tests.integration.test_worker_bambora import (  # noqa: F401 (collected here again)
    test_409_is_read_then_retried,
    test_503_503_then_success_each_read_before_the_next_cancel,
    test_timeout_after_send_is_resolved_by_a_read,
)
from tests.integration.test_worker_paywall import (  # noqa: F401
    STACK_ENV,
    STACK_PROCESSES,
    paywall_delivers_to_the_receiver,
    test_2500_payments_pages_out_of_order_with_a_duplicate,
    test_a_dropped_page_is_recovered_by_asking_again,
    test_past_payment_day_is_refunded_when_asked,
)

STACK_LEDGER = "postgresql"
__all__ = ["STACK_ENV", "STACK_PROCESSES"]
