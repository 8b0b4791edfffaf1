"""The composition root: settings → stores → use cases. The one place objects are built.

Each store's module is imported where the store is built, so a command loads only the stores
it uses (``ruff.toml`` allows these function-level imports here and in the CLI commands).

A :class:`Container` is made once per process (``privnum serve``) or per command (the CLI) and
builds each store the first time it is asked for: one database engine, one Redis client (the
hot index and the reveal counters share it), one binding policy, one key ring. Front doors
(``scripts.front_doors``, the CLI commands, tests) take what they need from it: the use cases
(``container.use_cases``), the call path's look-up, the call log's sink.

Every fault while building (bad URL, missing driver, missing or wrong key file) is a
``PrivnumError`` with one clear line, never a traceback.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from binding_store.db import Database
from routing.api_ports import CallOriginator
from routing.call_log_views import LinkTemplates
from routing.errors import StoreUnavailable
from routing.health_ports import DisabledProbe, HealthProbe
from routing.metrics_ports import MetricsSink, NoMetrics
from routing.reveal_ports import RevealCounters
from routing.risk import load_policy
from routing.usecases import UseCases
from scripts.clock import Clock, utc_now
from scripts.part_config import (
    cdr_zone,
    database,
    default_csv_file,
    listener_config,
    read_database,
    redis_index,
    route_options,
    safe_url,
)
from scripts.settings import Settings

if TYPE_CHECKING:
    from agi.ami_listener import AmiListenerConfig
    from agi.ami_reconcile import ReconcileResult
    from agi.extension_route import ExtensionRouter
    from agi.handlers import RouteOptions
    from binding_store.accounts import AccountRepository
    from binding_store.audit import AuditLog
    from binding_store.binding_policy import BindingPolicy
    from binding_store.bindings import BindingStore
    from binding_store.call_log import CallLogStore
    from binding_store.call_log_query import CallLogReader
    from binding_store.call_rules import SqlCallRules
    from binding_store.callers import CallerRepository
    from binding_store.console_reader import ConsoleReader
    from binding_store.crypto import BuyerCipher
    from binding_store.extension_store import ExtensionPool
    from binding_store.idempotency import SqlIdempotencyStore
    from binding_store.index_healer import IndexHealer
    from binding_store.orders import OrderStore
    from binding_store.outbox import Outbox
    from binding_store.pool import PoolRepository
    from binding_store.quarantine import PoolQuarantine
    from binding_store.recordings import RecordingVault
    from binding_store.redis_index import RedisIndex
    from binding_store.reveal_facts import RevealFactsStore
    from binding_store.route_lookup import StoreRouteLookup
    from binding_store.shops import ShopRepository
    from binding_store.token_cache import CachedTokens
    from binding_store.webhook_queue import DeliveryQueue
    from binding_store.webhooks import SubscriptionStore
    from routing.call_caps import CallCounter
    from routing.cdr_ports import CdrSink
    from scripts.dns import DnsResolver

_MISSING_SCHEMA = ("no such table", "does not exist", "undefinedtable")
log = logging.getLogger("privnum.serve")


class Container:
    """Also the use cases' ``Ports``: each store is built the first time a use case needs it
    (a command that never touches a binding never loads the key file)."""

    def __init__(self, settings: Settings, *, database: Database | None = None,
                 metrics: MetricsSink | None = None, clock: Clock = utc_now) -> None:
        self.settings = settings
        # The service's "now" for the call path and the API: the real clock, or the shifted
        # one of a test ('serve --allow-test-clock'). Infrastructure timing (the index
        # healer, CDR reconciliation, partitions) keeps the real clock.
        self.clock = clock
        self.metrics: MetricsSink = metrics or NoMetrics()
        self.originator: CallOriginator | None = None  # click-to-call, when AMI is on
        if database is not None:
            self.__dict__["database"] = database

    # ---- stores -------------------------------------------------------------------------

    @cached_property
    def database(self) -> Database:
        return database(self.settings)

    @cached_property
    def read_database(self) -> Database:
        """Where call-log reads and exports go: ``database.read_url`` (a replica, through a
        read-only engine) if set, else the primary."""
        if not self.settings.database.read_url:
            return self.database
        return read_database(self.settings)

    @cached_property
    def cipher(self) -> BuyerCipher:
        from binding_store.crypto import BuyerCipher, KeyRing

        return BuyerCipher(KeyRing.load(self.settings.keys_file))

    @cached_property
    def index(self) -> RedisIndex | None:
        """The Redis hot index (``None`` without ``redis.url`` or ``redis.sentinels``:
        look-ups read SQL). Its client is the process's one Redis client: the call path, the
        index writers and the API's counters all follow the master the Sentinels name."""
        return redis_index(self.settings)

    @cached_property
    def binding_policy(self) -> BindingPolicy:
        from binding_store.binding_policy import BindingPolicy

        b = self.settings.bindings
        from routing.extensions import ModePolicy

        return BindingPolicy(default_ttl=timedelta(seconds=b.ttl_seconds),
                             cooldown=timedelta(seconds=b.cooldown_seconds),
                             number_region=b.default_region,
                             mode_policy=ModePolicy(self.settings.extensions.mode_policy))

    @cached_property
    def bindings(self) -> BindingStore:
        from binding_store.bindings import BindingStore

        return BindingStore(self.database, self.cipher, policy=self.binding_policy,
                            index=self.index, outbox=self.outbox)

    @cached_property
    def counters(self) -> RevealCounters:
        from binding_store.reveal_counters import RedisRevealCounters, SqlRevealCounters

        if self.index is None:
            return SqlRevealCounters(self.database)
        return RedisRevealCounters(self.index.client, self.settings.redis.prefix,
                                   timeout=self.settings.redis.timeout_seconds)

    @cached_property
    def shops(self) -> ShopRepository:
        from binding_store.shops import ShopRepository

        return ShopRepository(self.database, self.index)

    @cached_property
    def call_rules(self) -> SqlCallRules:
        """Shops' call rules over the platform's (``[call_rules]``); shops without a time
        zone of their own are in the risk policy's."""
        from binding_store.call_rules import SqlCallRules

        settings = self.settings
        zone = load_policy(settings.risk_policy_file).timezone
        return SqlCallRules(self.database, settings.default_call_rules(zone),
                            cache_seconds=settings.call_rules.cache_seconds)

    @cached_property
    def call_counter(self) -> CallCounter:
        """Where call caps are counted: Redis when configured (one script per call), else
        SQL."""
        from binding_store.call_counter import RedisCallCounter, SqlCallCounter

        if self.index is None:
            return SqlCallCounter(self.database, self.cipher)
        return RedisCallCounter(self.index.client, self.settings.redis.prefix, self.cipher,
                                timeout=self.settings.redis.timeout_seconds)

    @cached_property
    def quarantine(self) -> PoolQuarantine:
        from binding_store.quarantine import PoolQuarantine

        return PoolQuarantine(self.database, self.outbox, self.settings.number_classes)

    @cached_property
    def accounts(self) -> AccountRepository:
        from binding_store.accounts import AccountRepository

        # a removal revokes the account's tokens: this process stops honouring them at once
        return AccountRepository(self.database, on_tokens_revoked=self.tokens.forget_account)

    @cached_property
    def callers(self) -> CallerRepository:
        from binding_store.callers import CallerRepository

        return CallerRepository(self.database, self.index)

    @cached_property
    def audit(self) -> AuditLog:
        from binding_store.audit import AuditLog

        return AuditLog(self.database)

    @cached_property
    def orders(self) -> OrderStore:
        from binding_store.orders import OrderStore

        return OrderStore(self.database, self.cipher)

    @cached_property
    def reveal_facts(self) -> RevealFactsStore:
        from binding_store.reveal_facts import RevealFactsStore

        return RevealFactsStore(self.database, self.cipher)

    @cached_property
    def tokens(self) -> CachedTokens:
        """Verified tokens are kept ``api.token_cache_seconds`` (revoked here: at once)."""
        from binding_store.token_cache import CachedTokens
        from binding_store.tokens import TokenStore

        return CachedTokens(TokenStore(self.database), self.settings.api.token_cache_seconds)

    @cached_property
    def call_log(self) -> CallLogReader:
        from binding_store.call_log_query import CallLogReader

        return CallLogReader(self.read_database)

    @cached_property
    def console_reader(self) -> ConsoleReader:
        from binding_store.console_reader import ConsoleReader

        return ConsoleReader(self.read_database, self.database)

    @cached_property
    def extension_pool(self) -> ExtensionPool:
        from binding_store.extension_store import ExtensionPool

        return ExtensionPool(self.database)

    @cached_property
    def pool(self) -> PoolRepository:
        from binding_store.pool import PoolRepository

        return PoolRepository(self.database, self.settings.number_classes, self.index)

    @cached_property
    def call_log_store(self) -> CallLogStore:
        """The call log's write side (the AMI listener's ``CdrSink``, reconcile)."""
        from binding_store.call_log import CallLogStore

        return CallLogStore(self.database, outbox=self.outbox)

    @cached_property
    def recordings(self) -> RecordingVault:
        """Recorded calls at rest (encrypted with the buyer numbers' key ring)."""
        from binding_store.recordings import RecordingVault, VaultOptions

        r = self.settings.recordings
        return RecordingVault(
            self.database, lambda: self.cipher, self.call_rules,
            VaultOptions(spool_dir=r.spool_dir, store_dir=self.settings.recording_store_dir,
                         min_seconds=r.min_seconds, settle_seconds=r.settle_seconds,
                         orphan_seconds=r.orphan_seconds),
            outbox=self.outbox, observe=self.metrics.recording)

    @cached_property
    def outbox(self) -> Outbox:
        """The webhook outbox every store writes its events into (in its own transaction)."""
        from binding_store.outbox import Outbox

        return Outbox(enabled=self.settings.webhooks.enabled)

    @cached_property
    def webhook_subscriptions(self) -> SubscriptionStore:
        from binding_store.webhooks import SubscriptionStore

        return SubscriptionStore(self.database)

    @cached_property
    def webhook_deliveries(self) -> DeliveryQueue:
        from binding_store.webhook_queue import DeliveryQueue
        from routing.webhooks import RetryLadder

        return DeliveryQueue(self.database,
                             RetryLadder.of_minutes(self.settings.webhooks.retry_minutes))

    @cached_property
    def idempotency_keys(self) -> SqlIdempotencyStore:
        from binding_store.idempotency import SqlIdempotencyStore

        return SqlIdempotencyStore(self.database, self.cipher)

    @cached_property
    def host_resolver(self) -> DnsResolver:
        from scripts.dns import DnsResolver

        return DnsResolver()

    def route_lookup(self, healer: IndexHealer | None = None) -> StoreRouteLookup:
        """Both ``RouteLookup`` and ``AttemptRecorder`` for the call path; with a ``healer``, a
        look-up that finds the index behind or lost wakes it."""
        from binding_store.route_lookup import StoreRouteLookup

        return StoreRouteLookup(
            self.database, self.cipher, index=self.index,
            lookback=timedelta(days=self.settings.bindings.expired_lookback_days),
            on_stale_index=healer.poke if healer is not None else None)

    def extension_router(self) -> ExtensionRouter:
        """The call path's extension-number side (a directory cache of its own)."""
        from agi.extension_route import ExtensionRouter
        from binding_store.extension_lookup import ExtensionDirectory, ExtensionLookup
        from routing.extension_calls import CollectPrompts

        e = self.settings.extensions
        lookback = timedelta(days=self.settings.bindings.expired_lookback_days)
        return ExtensionRouter(
            ExtensionDirectory(self.database, refresh_seconds=e.directory_refresh_seconds),
            ExtensionLookup(self.database, self.cipher, lookback=lookback),
            prompts=CollectPrompts(first=e.prompt, again=e.retry_prompt,
                                   timeout_seconds=e.digit_timeout_seconds,
                                   max_tries=e.max_tries),
            store_timeout=self.settings.agi.store_timeout_seconds)

    def index_healer(self, observe: Callable[[str], None] | None = None) -> IndexHealer | None:
        """The background check-and-rebuild of the hot index (``None`` without Redis)."""
        if self.index is None:
            return None
        from binding_store.index_healer import IndexHealer

        redis = self.settings.redis
        return IndexHealer(self.index, self.database, clock=utc_now,
                           interval=redis.check_interval_seconds, batch=redis.rebuild_batch,
                           observe=observe)

    def warn_open_key_file(self) -> None:
        """One warning when the key file can be read (or written) by group or others: whoever
        can read it can decrypt every buyer number."""
        path = self.settings.keys_file
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            return  # loading it says what is wrong
        if mode & 0o077:
            log.warning("key file %s is accessible to group/others (mode %04o): anyone who can "
                        "read it can decrypt every buyer number; chmod 600 %s", path, mode, path)

    async def aclose(self) -> None:
        """Close what was opened (the call rules' background refresh, the Redis client, the
        database's pool)."""
        if "call_rules" in self.__dict__:
            await self.call_rules.close()
        if "index" in self.__dict__ and self.index is not None:
            with suppress(StoreUnavailable, OSError):
                await self.index.close()
        engines = {id(db): db for name in ("read_database", "database")
                   if (db := self.__dict__.get(name)) is not None}
        for db in engines.values():
            with suppress(SQLAlchemyError, OSError):
                await db.dispose()

    # ---- use cases ----------------------------------------------------------------------

    def use_cases(self, originator: CallOriginator | None = None) -> UseCases:
        if originator is not None:
            self.originator = originator
        settings = self.settings
        return UseCases(
            ports=self, policy=load_policy(settings.risk_policy_file),
            links=LinkTemplates(order=settings.call_log.order_link_template,
                                chat=settings.call_log.chat_link_template),
            number_classes=settings.number_classes, region=settings.bindings.default_region,
            ring_seconds=settings.asterisk.max_ring_seconds,
            idempotency_ttl=timedelta(hours=settings.api.idempotency_ttl_hours),
            cooldown=timedelta(seconds=settings.bindings.cooldown_seconds))

    def health_probes(self, ami: HealthProbe | None = None,
                      fastagi: HealthProbe | None = None) -> tuple[HealthProbe, ...]:
        from binding_store.health import DatabaseProbe, RedisProbe, ReplicaProbe

        probes: list[HealthProbe] = [
            DatabaseProbe(self.database),
            RedisProbe(self.index) if self.index is not None
            else DisabledProbe("redis", "not configured"),
            ami or DisabledProbe("ami", "disabled"),
            fastagi or DisabledProbe("fastagi", "not served by this process")]
        if self.settings.database.read_url:
            probes.append(ReplicaProbe(self.read_database))
        return tuple(probes)

    # ---- the call path and the call log ------------------------------------------------

    def route_options(self) -> RouteOptions:
        return route_options(self.settings)

    def ami_config(self) -> AmiListenerConfig:
        return listener_config(self.settings)

    async def reconcile(self, *, file: Path | None = None, system_name: str | None = None,
                        now: datetime | None = None, sink: CdrSink | None = None
                        ) -> ReconcileResult:
        """Import the safety-net CSV (``file`` or :func:`default_csv_file`), close orphans."""
        from agi.ami_reconcile import reconcile_file

        settings = self.settings
        path = file or default_csv_file(settings)
        store = self.call_log_store
        when = now or utc_now()
        name = system_name or settings.agi.system_name or await store.last_system_name()
        return await reconcile_file(
            path, sink or store, zone=cdr_zone(settings), system_name=name, now=when,
            lookback=timedelta(days=settings.call_log.reconcile_lookback_days),
            orphan_grace_seconds=settings.call_log.orphan_grace_seconds,
            classes=settings.number_classes)


@asynccontextmanager
async def open_container(settings: Settings, *, metrics: MetricsSink | None = None,
                         clock: Clock = utc_now) -> AsyncIterator[Container]:
    """A container for one command or process, closed afterwards; a missing schema or any SQL
    fault while it is used is one line."""
    container = Container(settings, metrics=metrics, clock=clock)
    try:
        yield container
    except StoreUnavailable as exc:
        if any(m in str(exc).lower() for m in _MISSING_SCHEMA):
            raise StoreUnavailable(_schema_hint(settings)) from exc
        raise
    except ProgrammingError as exc:
        if any(m in str(exc).lower() for m in _MISSING_SCHEMA):
            raise StoreUnavailable(_schema_hint(settings)) from exc
        raise StoreUnavailable(f"database error: {_first_line(exc)}") from exc
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"database error: {_first_line(exc)}") from exc
    finally:
        await container.aclose()


def _schema_hint(settings: Settings) -> str:
    return (f"database {safe_url(settings.database_url)} has no privnum schema "
            "(or an old one): run 'privnum db upgrade'")


def _first_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
