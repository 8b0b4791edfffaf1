"""``privnum_issue``: PostgreSQL issues a batch of bindings in one statement.

Each request of the batch runs in its own sub-transaction (a PL/pgSQL block with an
exception handler), so one request's refusal or lost race never undoes another's binding;
the whole batch commits once (group commit). Per request, in the order of the ORM path
(``BindingStore.issue``): the shop exists and is enabled, the caller is approved, the
order's active binding is returned as it is; else X is chosen by the rules of
``routing.allocation.choose_virtual_number`` (the first eligible number in allocation
order, the one ``binding_store.allocation_sql`` finds too; here a window of the first
available numbers, then the rest of the pool streamed from the index ``ix_pool_axb_order``
without the numbers A holds already) and the binding is inserted. The partial unique
indexes decide races with other transactions: a lost (A, X) or (B, X) race is run again
without that X, a lost order race returns the winner's binding. After the last request,
the new bindings' audit events and outbox events are inserted, one statement each for the
batch, in request order.

Nothing in a batch waits for another transaction's request: the order and each (A, X) and
(B, X) pair are taken with a transaction-level advisory try-lock first; a contested pair
moves on to the next X, a contested order (or a pool whose only free numbers are contested)
answers ``busy`` and the writer sends the request again in a later batch.

Requests that meet a binding still active past its expiry (for A, B or the order) answer
``stale``: the ORM path expires it with its events, then issues.

Statuses: ``created``, ``existing``, ``no_shop``, ``not_enabled``, ``caller`` (``detail``:
the caller's status or NULL), ``exhausted``, ``stale``, ``busy``, ``contention``, ``error``
(``detail``: the message).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, event

# Whether A, B or the order has an active binding past its expiry. The A arm reads
# ix_bindings_a_active_expiry: A's bindings past their expiry, not all of A's active ones.
STALE_CHECK = """FROM bindings b
                  WHERE b.state = 'active' AND b.expires_at <= {now}
                    AND (b.caller_a = {a} OR b.buyer_bidx = {bidx}
                         OR (b.shop_id = {shop} AND b.order_id = {order}))
                  LIMIT 1"""

# What every candidate list reads: the available AXB numbers not yet tried, in allocation
# order (the order of the index ix_pool_axb_order).
_AVAILABLE = """p.state = 'available' AND p.mode = 'axb'
                                  AND p.number <> ALL (v_excluded)"""
_POOL_ORDER = """p.last_released_at IS NOT NULL, p.last_released_at,
                                         p.number COLLATE "C\""""


def _pair_free(x: str) -> str:
    """Candidate ``x`` is free for the request: B holds no active binding on it and A did not
    release one on it within the cool-down ((A, X) itself is checked by each list its way)."""
    return f"""NOT EXISTS (
                                 SELECT 1 FROM bindings b
                                  WHERE b.state = 'active' AND b.virtual_x = {x}
                                    AND b.buyer_bidx = v_bidx)
                           AND NOT EXISTS (
                                 SELECT 1 FROM bindings b
                                  WHERE b.caller_a = v_a AND b.virtual_x = {x}
                                    AND b.released_at IS NOT NULL
                                    AND b.released_at > p_now - p_cooldown)"""


# The first window: the first ``p_window`` available numbers in allocation order (preferred
# region first), then the pair and cool-down checks, (A, X) by one index probe per candidate.
CANDIDATES_FIRST = f"""
                        SELECT cand.number FROM (
                            SELECT * FROM (
                              (SELECT p.number, 0 AS region_rank,
                                      p.last_released_at IS NOT NULL AS never_rank,
                                      p.last_released_at,
                                      p.number COLLATE "C" AS sort_number
                                 FROM pool_numbers p
                                WHERE {_AVAILABLE}
                                  AND (v_region IS NULL OR p.region = v_region)
                                ORDER BY {_POOL_ORDER}
                                LIMIT p_window)
                              UNION ALL
                              (SELECT p.number, 1, p.last_released_at IS NOT NULL,
                                      p.last_released_at, p.number COLLATE "C"
                                 FROM pool_numbers p
                                WHERE {_AVAILABLE}
                                  AND v_region IS NOT NULL
                                  AND p.region IS DISTINCT FROM v_region
                                ORDER BY {_POOL_ORDER}
                                LIMIT p_window)) ranked
                             ORDER BY 2, 3, 4, 5
                             LIMIT p_window) cand
                         WHERE NOT EXISTS (
                                 SELECT 1 FROM bindings b
                                  WHERE b.state = 'active' AND b.virtual_x = cand.number
                                    AND b.caller_a = v_a)
                           AND {_pair_free("cand.number")}
                         ORDER BY cand.region_rank, cand.never_rank, cand.last_released_at,
                                  cand.sort_number"""


def _rest(region: str) -> str:
    """The whole pool's numbers of ``region`` (a condition on ``p``) in allocation order,
    streamed from ``ix_pool_axb_order`` (no sort, no window), A's active numbers left out by
    one hashed read of them, then the pair and cool-down checks."""
    return f"""
                        SELECT p.number FROM pool_numbers p
                         WHERE {_AVAILABLE}
                           AND {region}
                           AND p.number NOT IN (SELECT b.virtual_x FROM bindings b
                                                 WHERE b.state = 'active'
                                                   AND b.caller_a = v_a)
                           AND {_pair_free("p.number")}
                         ORDER BY {_POOL_ORDER}"""


CANDIDATES_PREFERRED = _rest("(v_region IS NULL OR p.region = v_region)")
CANDIDATES_OTHERS = _rest("p.region IS DISTINCT FROM v_region")

_FUNCTION = r"""
CREATE OR REPLACE FUNCTION privnum_issue(
    reqs jsonb, p_cooldown interval, p_window integer, p_attempts integer)
RETURNS TABLE (idx integer, status text, binding_id text, virtual_x text, buyer_id text,
               caller_a text, buyer_masked text, created_at timestamptz,
               expires_at timestamptz, detail text)
LANGUAGE plpgsql
-- Whether its statements are planned per call or once per session is the session's choice
-- (plan_cache_mode): privnum's writer makes it with PLAN_CHOICE.
AS $fn$
#variable_conflict use_column
DECLARE
    r jsonb;
    n integer := 0;
    v_a text; v_bidx text; v_shop text; v_order text; v_region text;
    v_service text; v_caller text; v_x text; v_con text;
    v_excluded text[];
    v_attempt integer;
    v_stage integer;
    v_id text; v_buyer text; v_created timestamptz; v_expires timestamptz;
    v_owner text; v_masked text; p_now timestamptz; v_contended boolean;
    v_got boolean;
    v_cur refcursor;
    v_done integer[] := '{}';
    v_done_x text[] := '{}';
BEGIN
    FOR r IN SELECT value FROM jsonb_array_elements(reqs) LOOP
        idx := n; n := n + 1;
        status := NULL; binding_id := NULL; virtual_x := NULL; buyer_id := NULL;
        caller_a := NULL; buyer_masked := NULL; created_at := NULL; expires_at := NULL;
        detail := NULL;
        v_a := r->>'a'; v_bidx := r->>'bidx'; v_shop := r->>'shop'; v_order := r->>'order';
        v_region := r->>'region'; p_now := (r->>'now')::timestamptz;
        v_excluded := '{}';
        v_attempt := 0;
        LOOP
            v_attempt := v_attempt + 1;
            IF v_attempt > p_attempts THEN
                status := 'contention';
                EXIT;
            END IF;
            v_x := NULL;
            BEGIN
                SELECT s.service_state,
                       (SELECT c.status FROM caller_numbers c
                         WHERE c.shop_id = s.id AND c.number = v_a)
                  INTO v_service, v_caller
                  FROM shops s WHERE s.id = v_shop;
                IF NOT FOUND THEN
                    status := 'no_shop'; EXIT;
                END IF;
                IF v_service IS DISTINCT FROM 'enabled' THEN
                    status := 'not_enabled'; EXIT;
                END IF;
                IF v_caller IS DISTINCT FROM 'approved' THEN
                    status := 'caller'; detail := v_caller; EXIT;
                END IF;
                PERFORM 1 @STALE_CHECK@;
                IF FOUND THEN
                    status := 'stale'; EXIT;
                END IF;
                -- Another transaction issuing this order right now: ask again later
                -- rather than wait for it inside a batch (waits between batches deadlock).
                IF NOT pg_try_advisory_xact_lock(
                        hashtextextended('o:' || v_shop || ':' || v_order, 0)) THEN
                    status := 'busy'; EXIT;
                END IF;
                SELECT b.id, b.virtual_x, b.buyer_id, b.caller_a, b.buyer_masked,
                       b.created_at, b.expires_at
                  INTO v_id, v_x, v_buyer, v_owner, v_masked, v_created, v_expires
                  FROM bindings b
                  WHERE b.state = 'active' AND b.shop_id = v_shop AND b.order_id = v_order;
                IF FOUND THEN
                    status := 'existing'; binding_id := v_id; virtual_x := v_x;
                    buyer_id := v_buyer; caller_a := v_owner; buyer_masked := v_masked;
                    created_at := v_created; expires_at := v_expires;
                    EXIT;
                END IF;
                v_contended := false;
                v_got := false;
                -- Three stages, each in the pool's allocation order, so the first free X is
                -- the one the whole pool's order gives. The first window probes (A, X) for
                -- each candidate, one index probe each: the usual line holds few numbers and
                -- its first window has a free one. Past it, the rest of the pool (the
                -- preferred region's numbers, then the others') is streamed from the order's
                -- index, A's numbers left out with one hashed read of A's bindings: every
                -- line takes numbers in the same order, so a line holding k numbers holds
                -- the first k, and probing each cost its next binding k probes (quadratic
                -- over a bulk file for one line). Streamed, not windowed: a window has to be
                -- sorted whole before its first row comes out.
                FOREACH v_stage IN ARRAY ARRAY[0, 1, 2] LOOP
                    CONTINUE WHEN v_stage = 2 AND v_region IS NULL;
                    -- An explicit cursor, fetched one row at a time: a FOR loop fetches ten
                    -- rows ahead, probing ten candidates where the first free one is nearly
                    -- always taken. A new portal name each time (an attempt that failed left
                    -- its portal behind with its sub-transaction).
                    v_cur := NULL;
                    IF v_stage = 0 THEN
                        OPEN v_cur NO SCROLL FOR @CANDIDATES_FIRST@;
                    ELSIF v_stage = 1 THEN
                        OPEN v_cur NO SCROLL FOR @CANDIDATES_PREFERRED@;
                    ELSE
                        OPEN v_cur NO SCROLL FOR @CANDIDATES_OTHERS@;
                    END IF;
                    LOOP
                        FETCH v_cur INTO v_x;
                        EXIT WHEN NOT FOUND;
                        -- (A, X) or (B, X) being issued by another transaction: the next X
                        -- of the same ordered list, no new query.
                        IF pg_try_advisory_xact_lock(
                               hashtextextended('ax:' || v_a || ':' || v_x, 0))
                           AND pg_try_advisory_xact_lock(
                               hashtextextended('bx:' || v_bidx || ':' || v_x, 0)) THEN
                            v_got := true;
                            EXIT;
                        END IF;
                        v_contended := true;
                    END LOOP;
                    CLOSE v_cur;
                    EXIT WHEN v_got;
                END LOOP;
                IF NOT v_got THEN
                    v_x := NULL;
                END IF;
                IF v_x IS NULL THEN
                    -- numbers only held by transactions in flight may still come free
                    status := CASE WHEN v_contended THEN 'busy' ELSE 'exhausted' END;
                    EXIT;
                END IF;
                INSERT INTO bindings (id, shop_id, order_id, buyer_id, caller_a, virtual_x,
                                      buyer_cipher, buyer_bidx, buyer_masked, created_at,
                                      expires_at, released_at, state)
                VALUES (r->>'id', v_shop, v_order, r->>'buyer_id', v_a, v_x,
                        decode(r->>'cipher', 'hex'), v_bidx, r->>'masked', p_now,
                        (r->>'expires')::timestamptz, NULL, 'active');
                v_done := v_done || idx;
                v_done_x := v_done_x || v_x;
                status := 'created'; binding_id := r->>'id'; virtual_x := v_x;
                buyer_id := r->>'buyer_id'; caller_a := v_a; buyer_masked := r->>'masked';
                created_at := p_now;
                expires_at := (r->>'expires')::timestamptz;
                EXIT;
            EXCEPTION
                WHEN unique_violation THEN
                    GET STACKED DIAGNOSTICS v_con = CONSTRAINT_NAME;
                    -- a lost order race: the next attempt finds the winner's binding
                    IF v_con IS DISTINCT FROM 'uq_active_order' AND v_x IS NOT NULL THEN
                        v_excluded := v_excluded || v_x;
                    END IF;
                WHEN deadlock_detected OR serialization_failure THEN
                    IF v_x IS NOT NULL THEN
                        v_excluded := v_excluded || v_x;
                    END IF;
                WHEN OTHERS THEN
                    status := 'error'; detail := SQLERRM; EXIT;
            END;
        END LOOP;
        RETURN NEXT;
    END LOOP;
    -- The new bindings' audit rows and binding.created events, one statement each for the
    -- whole batch (a statement per binding costs more than its row).
    IF cardinality(v_done) > 0 THEN
        INSERT INTO audit_events (at, actor, shop_id, kind, subject, detail)
        SELECT (d.r->>'now')::timestamptz, d.r->>'actor', d.r->>'shop', d.r->>'kind',
               d.r->>'id', jsonb_set(d.r->'audit', '{virtual_x}', to_jsonb(d.x))::text
          FROM (SELECT reqs->u.i AS r, u.x, u.ord
                  FROM unnest(v_done, v_done_x) WITH ORDINALITY AS u(i, x, ord)) d
         ORDER BY d.ord;
        INSERT INTO webhook_events (event_id, type, stream, shop_id, occurred_at, created_at,
                                    payload, dispatched_at)
        SELECT d.r->'event'->>'event_id', d.r->'event'->>'type', d.r->'event'->>'stream',
               d.r->>'shop', (d.r->>'now')::timestamptz, (d.r->>'now')::timestamptz,
               jsonb_set(d.r->'event'->'payload', '{binding,virtual_x}', to_jsonb(d.x))::text,
               NULL
          FROM (SELECT reqs->u.i AS r, u.x, u.ord
                  FROM unnest(v_done, v_done_x) WITH ORDINALITY AS u(i, x, ord)) d
         WHERE d.r ? 'event'
         ORDER BY d.ord;
    END IF;
END
$fn$
"""

CREATE_FUNCTION = _FUNCTION.replace("@STALE_CHECK@", STALE_CHECK.format(
    now="p_now", a="v_a", bidx="v_bidx", shop="v_shop", order="v_order")).replace(
    "@CANDIDATES_FIRST@", CANDIDATES_FIRST.strip()).replace(
    "@CANDIDATES_PREFERRED@", CANDIDATES_PREFERRED.strip()).replace(
    "@CANDIDATES_OTHERS@", CANDIDATES_OTHERS.strip())

DROP_FUNCTION = "DROP FUNCTION IF EXISTS privnum_issue(jsonb, interval, integer, integer)"

# privnum_issue's candidate order, read in order (a LIMIT stops early) rather than the whole
# pool sorted for each binding. Built with the function (``install``, migration 0017), not
# declared on the model: SQLite cannot have it and Alembic cannot compare it there.
POOL_ORDER_INDEX = "ix_pool_axb_order"
CREATE_POOL_ORDER_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {POOL_ORDER_INDEX} ON pool_numbers "
    "((last_released_at IS NOT NULL), last_released_at, (number COLLATE \"C\")) "
    "WHERE state = 'available' AND mode = 'axb'")

CALL = "SELECT * FROM privnum_issue(%s, %s, %s, %s)"

# Planning privnum_issue's statements costs more than running them, so a writer session plans
# them once (generic plans) when the statistics describe the tables as they are: analyzed, and
# no more than twice as large since. A table whose statistics are missing or that old is
# analyzed first: without statistics every plan guesses one row per probe, and the (A, X) probe
# then reads A's active bindings through ix_bindings_a_active_expiry for every candidate X
# (a line with 2 000 active bindings took 0.9 s per binding instead of 27 ms). A table another
# session is analyzing (autovacuum, another writer) is left to it, without waiting for its
# lock; its plans are then made per call, and the choice answers ``settled`` false: the writer
# chooses again after REPLAN_RETRY_SECONDS rather than REPLAN_SECONDS (planning every call
# costs a batch about twice the CPU, and the other session's ANALYZE is usually done by then).
# A lock held otherwise, or by a session whose progress this role may not see, is waited for
# 100 ms at most; the plans are then made per call until the next full interval, as they are
# when the role may not analyze the table (then autovacuum's statistics are awaited).
# The writer runs this on each new session and again every REPLAN_SECONDS, discarding the
# session's plans, so both the choice and the plans follow the tables' growth.
_ISSUE_TABLES = ("'bindings'::regclass, 'pool_numbers'::regclass, 'shops'::regclass, "
                 "'caller_numbers'::regclass")
_CURRENT = """c.reltuples >= 0
           AND pg_relation_size(c.oid) / current_setting('block_size')::integer
               <= 2 * c.relpages + 10"""
# The issue tables this session should analyze: their statistics are old and no other session
# is analyzing them right now.
# (a table's oid is unique within its database only)
_ANALYZING_ELSEWHERE = """EXISTS (SELECT 1 FROM pg_stat_progress_analyze a
                                WHERE a.relid = c.oid AND a.pid <> pg_backend_pid()
                                  AND a.datname = current_database())"""
TO_ANALYZE = f"""SELECT c.oid::regclass FROM pg_class c
              WHERE c.oid IN ({_ISSUE_TABLES}) AND NOT ({_CURRENT})
                AND NOT {_ANALYZING_ELSEWHERE}"""
PLAN_CHOICE = f"""
DO $analyze$
DECLARE t regclass;
BEGIN
    PERFORM set_config('lock_timeout', '100ms', true);
    FOR t IN {TO_ANALYZE} LOOP
        BEGIN
            EXECUTE format('ANALYZE %s', t);
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
END
$analyze$;
DISCARD PLANS;
SELECT set_config('plan_cache_mode', CASE WHEN bool_and(
           {_CURRENT})
       THEN 'force_generic_plan' ELSE 'force_custom_plan' END, false)
       = 'force_generic_plan'
       OR NOT bool_or(NOT ({_CURRENT}) AND {_ANALYZING_ELSEWHERE}) AS settled
  FROM pg_class c
 WHERE c.oid IN ({_ISSUE_TABLES})"""
REPLAN_SECONDS = 2.0
REPLAN_RETRY_SECONDS = 0.2
PLAN_MODE_CUSTOM = "force_custom_plan"
SET_PLAN_MODE = ("ALTER FUNCTION privnum_issue(jsonb, interval, integer, integer) "
                 "SET plan_cache_mode = {mode}")


def install(table: Table) -> None:
    """``create_all`` builds what the migrations build: the function comes with ``table``
    (on PostgreSQL) and goes before it."""
    def after_create(_target: Table, connection: Connection, **_kw: Any) -> None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(CREATE_FUNCTION)

    def before_drop(_target: Table, connection: Connection, **_kw: Any) -> None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(DROP_FUNCTION)

    event.listen(table, "after_create", after_create)
    event.listen(table, "before_drop", before_drop)


def install_pool_index(table: Table) -> None:
    """``create_all`` builds the pool's candidate-order index with ``table`` (PostgreSQL)."""
    def after_create(_target: Table, connection: Connection, **_kw: Any) -> None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(CREATE_POOL_ORDER_INDEX)

    event.listen(table, "after_create", after_create)
