"""Does the key file open every active binding? Checked once when the service starts, so a
wrong or outdated key file stops it with one line instead of failing each call to such a
binding (fail closed, but silently) until someone notices.

The key id is stored in clear in each ciphertext (``binding_store.crypto``: version, key-id
length, key id, ...); the distinct ids come from two small ``DISTINCT substr(...)`` queries
over the active bindings, and one binding per id is decrypted to prove the key is the right one.
"""

from __future__ import annotations

from sqlalchemy import func, literal_column, select

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Binding
from routing.errors import ConfigurationError
from routing.model import BindingState

_ACTIVE = Binding.state == BindingState.ACTIVE.value


async def active_key_ids(db: Database) -> dict[str, bytes]:
    """Key id -> one active binding's ciphertext under it."""
    # Literal positions: PostgreSQL matches a GROUP BY expression to the selected one only when
    # both are the same text (two bound parameters are two different expressions to it).
    head = func.substr(Binding.buyer_cipher, literal_column("1"), literal_column("2"))
    found: dict[str, bytes] = {}
    async with db.session() as session:
        heads = [bytes(h) for h in (await session.scalars(
            select(head).where(_ACTIVE).distinct())).all()]
        for prefix in heads:
            length = prefix[1] if len(prefix) == 2 else 0
            key_id = func.substr(Binding.buyer_cipher, literal_column("3"),
                                 literal_column(str(int(length))))
            rows = (await session.execute(
                select(key_id, func.min(Binding.id)).where(_ACTIVE, head == prefix)
                .group_by(key_id))).all()
            for raw_id, binding_id in rows:
                blob = await session.scalar(
                    select(Binding.buyer_cipher).where(Binding.id == binding_id))
                name = bytes(raw_id).decode("ascii", errors="replace")
                found.setdefault(name, bytes(blob or b""))
    return found


async def check_active_keys(db: Database, cipher: BuyerCipher, key_file: str) -> int:
    """Raise ConfigurationError (one line) unless every key id used by an active binding is in
    the key file and decrypts; return how many ids were checked."""
    used = await active_key_ids(db)
    missing = sorted(k for k in used if not cipher.has_key(k))
    if missing:
        raise ConfigurationError(
            f"active bindings are encrypted with key id(s) {', '.join(missing)}, missing from "
            f"the key file {key_file}: restore the key file that holds them (no call to those "
            "bindings could be bridged)")
    for blob in used.values():
        cipher.decrypt(blob)  # a key of the right id but the wrong bytes fails here, clearly
    return len(used)
