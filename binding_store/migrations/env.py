"""Alembic environment. The URL comes from the caller: ``config.attributes["url"]`` (set by
``binding_store.migrate``), ``-x url=...`` on the alembic command line, or ``sqlalchemy.url``.
Async driver URLs are turned into their synchronous form."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.engine import make_url

from binding_store.all_models import Base
from binding_store.db import sync_url
from binding_store.partitioned import schema_filters

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = (config.attributes.get("url")
           or context.get_x_argument(as_dictionary=True).get("url")
           or config.get_main_option("sqlalchemy.url"))
    if not url:
        raise SystemExit("no database URL: pass -x url=... (or use 'privnum db upgrade')")
    return sync_url(str(url))


def _configure(connection: Connection | None = None, **kwargs: object) -> None:
    url = _url()
    dialect = (connection.dialect.name if connection is not None
               else make_url(url).get_backend_name())
    # Partitions are not model tables; objects of the other dialect are not expected here.
    include_name, include_object = schema_filters(dialect, connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        compare_server_default=False,
        include_name=include_name,
        include_object=include_object,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
