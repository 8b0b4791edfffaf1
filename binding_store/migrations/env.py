"""Alembic environment. The URL comes from the caller: ``config.attributes["url"]`` (set by
``binding_store.migrate``), ``-x url=...`` on the alembic command line, or ``sqlalchemy.url``.
Async driver URLs are turned into their synchronous form."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from binding_store.all_models import Base
from binding_store.db import sync_url

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = (config.attributes.get("url")
           or context.get_x_argument(as_dictionary=True).get("url")
           or config.get_main_option("sqlalchemy.url"))
    if not url:
        raise SystemExit("no database URL: pass -x url=... (or use 'privnum db upgrade')")
    return sync_url(str(url))


def _configure(**kwargs: object) -> None:
    url = _url()
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        compare_server_default=False,
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
