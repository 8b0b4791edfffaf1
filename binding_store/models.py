"""SQL system of record (SQLAlchemy 2.0). Buyer numbers exist only as ciphertext, blind index
and masked text; the plaintext is never a column."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from binding_store import issue_sql
from binding_store.partitioned import declare_partitioned, only_on, range_partitioned
from binding_store.types import UTCDateTime
from routing.binding_views import BindingView
from routing.model import BindingState, PoolState

# Named constraints so Alembic migrations are stable across SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ACTIVE = text("state = 'active'")
# An extension binding holds (X, extension); an AXB binding's extension is ''.
ACTIVE_EXTENSION = text("state = 'active' AND extension <> ''")
MAIN_ROLE = text("role = 'main'")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(8), default="L1")
    service_state: Mapped[str] = mapped_column(String(16), default="not_enabled")
    agreement_version: Mapped[str | None] = mapped_column(String(32))
    accepted_by: Mapped[str | None] = mapped_column(String(64))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # IANA zone people read the shop's call log in; NULL: the default zone.
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Account(Base):
    """A shop's main account or a sub-account, with the phone its staff member uses."""

    __tablename__ = "accounts"
    # At most one main account per shop, enforced by the database.
    __table_args__ = (
        Index("uq_accounts_main", "shop_id", unique=True,
              sqlite_where=MAIN_ROLE, postgresql_where=MAIN_ROLE),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))  # main | sub
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164; staff, not buyers
    phone_reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallerNumber(Base):
    """主叫号码: a number the shop's staff may place privacy calls from."""

    __tablename__ = "caller_numbers"
    __table_args__ = (UniqueConstraint("shop_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), index=True)
    number: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected | disabled
    is_main: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PoolNumber(Base):
    __tablename__ = "pool_numbers"
    __table_args__ = (Index("ix_pool_pick", "state", "region", "last_released_at"),)

    number: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    region: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[str] = mapped_column(String(16), default=PoolState.AVAILABLE.value)
    last_released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # 'axb' or 'extension' (routing.extensions.NumberMode); an extension number's slots are
    # rows of pool_extensions, each extension_length digits.
    mode: Mapped[str] = mapped_column(String(16), default="axb", server_default="axb")
    extension_length: Mapped[int | None] = mapped_column(Integer)


class Binding(Base):
    """A binding. Uniqueness among active bindings is enforced by partial unique indexes:
    (A, X, extension), (B-index, X, extension), (shop, order) and, for extension bindings,
    (X, extension). An AXB binding's extension is '', so its (A, X) and (B, X) are unique."""

    __tablename__ = "bindings"
    __table_args__ = (
        Index("uq_active_ax", "caller_a", "virtual_x", "extension", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("uq_active_bx", "buyer_bidx", "virtual_x", "extension", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("uq_active_x_extension", "virtual_x", "extension", unique=True,
              sqlite_where=ACTIVE_EXTENSION, postgresql_where=ACTIVE_EXTENSION),
        Index("ix_bindings_axe_released", "caller_a", "virtual_x", "extension", "released_at",
              sqlite_where=text("extension <> ''"), postgresql_where=text("extension <> ''")),
        Index("uq_active_order", "shop_id", "order_id", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("ix_bindings_ax_released", "caller_a", "virtual_x", "released_at"),
        Index("ix_bindings_bx", "buyer_bidx", "virtual_x"),
        Index("ix_bindings_expiry", "state", "expires_at"),
        # Issuing asks whether A has an active binding past its expiry: without this, that
        # question reads every active binding of A (a busy shop line holds thousands).
        Index("ix_bindings_a_active_expiry", "caller_a", "expires_at",
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    order_id: Mapped[str] = mapped_column(String(64))
    buyer_id: Mapped[str] = mapped_column(String(64), default="")
    caller_a: Mapped[str] = mapped_column(String(20))
    virtual_x: Mapped[str] = mapped_column(ForeignKey("pool_numbers.number"))
    extension: Mapped[str] = mapped_column(String(4), default="", server_default="")
    buyer_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    buyer_bidx: Mapped[str] = mapped_column(String(64))
    buyer_masked: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default=BindingState.ACTIVE.value)

    def view(self, now: datetime, *, created: bool = False) -> BindingView:
        """The domain view at ``now`` (an active row past its expiry reads as expired)."""
        state = BindingState(self.state)
        if state is BindingState.ACTIVE and now >= self.expires_at:
            state = BindingState.EXPIRED
        return BindingView(
            binding_id=self.id, shop_id=self.shop_id, order_id=self.order_id,
            buyer_id=self.buyer_id, caller_a=self.caller_a, virtual_x=self.virtual_x,
            buyer_masked=self.buyer_masked, created_at=self.created_at,
            expires_at=self.expires_at, released_at=self.released_at, state=state,
            created=created, extension=self.extension or "")


class IndexWatermark(Base):
    """Single row (id 1): a counter raised in the same transaction as every change that takes
    a right to call away or changes where a call goes. The Redis index carries the value it
    is up to date with; see ``binding_store.watermark``."""

    __tablename__ = "index_watermark"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """Who did what: enablement, caller changes, binding create/switch/release, reveals.
    ``detail`` is JSON text and never holds a plaintext buyer number. Partitioned by ``at`` on
    PostgreSQL (primary key ``(id, at)``)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        only_on("sqlite", PrimaryKeyConstraint("id", name="pk_audit_events")),
        range_partitioned("at"),
    )

    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(160))  # who acted>for whom
    shop_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")


class CallAttempt(Base):
    """One routing decision (bridge or reject), written by the call path; CDRs join to it.
    Partitioned by ``at`` on PostgreSQL: primary key ``(id, at)``, idempotency key
    ``(system_name, uniqueid, at)`` (a retried write carries the same ``at``)."""

    __tablename__ = "call_attempts"
    __table_args__ = (
        only_on("sqlite", PrimaryKeyConstraint("id", name="pk_call_attempts")),
        only_on("sqlite", UniqueConstraint("system_name", "uniqueid")),
        only_on("postgresql", UniqueConstraint("system_name", "uniqueid", "at",
                                               name="uq_call_attempts_system_uniqueid_at")),
        Index("ix_attempts_shop_at", "shop_id", "at"),
        Index("ix_attempts_linkedid", "linkedid"),
        range_partitioned("at"),
    )

    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    system_name: Mapped[str] = mapped_column(String(64), default="")
    uniqueid: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    caller_masked: Mapped[str] = mapped_column(String(20), default="")
    caller_a: Mapped[str] = mapped_column(String(20), default="")
    virtual_x: Mapped[str] = mapped_column(String(20), default="")
    action: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str | None] = mapped_column(String(16))
    binding_id: Mapped[str] = mapped_column(String(32), default="")
    shop_id: Mapped[str] = mapped_column(String(64), default="")
    order_id: Mapped[str] = mapped_column(String(64), default="")
    # how a call was let through by a call rule ("grace", "fallback"); "" or NULL normally.
    # Deferred and without any default, so ORM reads and writes that do not name it (readers
    # of the call log, code that predates the column) leave it out.
    mark: Mapped[str | None] = mapped_column(String(16), deferred=True)
    # extension mode: the extension entered (or dialled after X); NULL on every other call.
    extension: Mapped[str | None] = mapped_column(String(4))


declare_partitioned(cast(Table, AuditEvent.__table__), "at")
declare_partitioned(cast(Table, CallAttempt.__table__), "at")
issue_sql.install(cast(Table, Binding.__table__))
issue_sql.install_pool_index(cast(Table, PoolNumber.__table__))
