"""The callback pages repository: each verified page stored once, compressed."""

from __future__ import annotations

import zlib

import msgspec
from sqlalchemy import Connection, func, select

from worker.ledger.insert_once import insert_once
from worker.ledger.tables import callback_pages
from worker.services.records import NewCallbackPage, PageTotals


class SqlCallbackPageRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, page: NewCallbackPage) -> bool:
        return insert_once(self.conn, callback_pages, {
            "bulk_payment_id": page.bulk_payment_id,
            "merchant_unique_code": page.merchant_unique_code,
            "page_number": page.page_number,
            "total_pages": page.total_pages,
            "body_zlib": zlib.compress(page.raw, 1),
            # msgspec writes the amounts as exact decimal strings, ~10x faster than json.
            "payments_zlib": zlib.compress(msgspec.json.encode(page.payments), 1),
            "totals": page.totals,
            "received_at": page.received_at,
        })

    def totals(self, *, bulk_payment_id: str | None, code: str | None) -> list[PageTotals]:
        query = select(
            callback_pages.c.bulk_payment_id,
            callback_pages.c.page_number,
            callback_pages.c.total_pages,
            callback_pages.c.totals,
        ).order_by(callback_pages.c.id)
        if bulk_payment_id is not None:
            query = query.where(callback_pages.c.bulk_payment_id == bulk_payment_id)
        else:
            query = query.where(callback_pages.c.merchant_unique_code == code)
        return [PageTotals(*row) for row in self.conn.execute(query)]

    def stored(self, bulk_payment_id: str, code: str) -> int:
        query = select(func.count()).select_from(callback_pages).where(
            callback_pages.c.bulk_payment_id == bulk_payment_id,
            callback_pages.c.merchant_unique_code == code,
        )
        return int(self.conn.execute(query).scalar_one())

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(callback_pages)).scalar_one())
