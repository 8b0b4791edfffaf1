"""The names of the Redis hot index's keys, apart from what is done with them.

The index's operations, its rebuild and the tests that look at Redis directly all build keys
here, so they agree on every name and every key carries the index's one hash tag (its scripts
touch a single Redis Cluster slot). What each key holds: ``binding_store.redis_index``.
"""

from __future__ import annotations


class IndexKeys:
    """The keys of one index, all under ``{prefix}:{{{prefix}}}``."""

    def __init__(self, prefix: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"Redis key prefix {prefix!r}: not empty, no braces")
        self.prefix = prefix
        self.base = f"{prefix}:{{{prefix}}}"  # the hash tag every key of the index shares

    def ax_key(self, caller_a: str, virtual_x: str) -> str:
        return f"{self.base}:ax:{caller_a}:{virtual_x}"

    def bx_key(self, buyer_bidx: str, virtual_x: str) -> str:
        return f"{self.base}:bx:{buyer_bidx}:{virtual_x}"

    def tombstone_key(self, binding_id: str) -> str:
        return f"{self.base}:gone:{binding_id}"

    def shop_key(self, shop_id: str) -> str:
        return f"{self.base}:shop:{shop_id}"

    def caller_key(self, shop_id: str, number: str) -> str:
        return f"{self.base}:caller:{shop_id}:{number}"

    @property
    def watermark_key(self) -> str:
        return f"{self.base}:index:watermark"

    @property
    def applied_key(self) -> str:
        return f"{self.base}:index:applied"

    @property
    def pool_key(self) -> str:
        return f"{self.base}:pool"

    @property
    def rebuild_key(self) -> str:
        return f"{self.base}:index:rebuild"

    def pattern(self, kind: str) -> str:
        """SCAN pattern of one kind of key (``ax``, ``bx``, ``shop``, ``caller``)."""
        return f"{self.base}:{kind}:*"
