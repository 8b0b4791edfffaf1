"""The blind index and keyed digests are HMAC-SHA256 under the index key, the same value
whatever was digested before: stored (B, X) keys and look-ups must keep matching."""

from __future__ import annotations

import pytest

from binding_store.crypto import BuyerCipher, KeyRing

RING = KeyRing(keys={"k1": bytes(32)}, current="k1", index_key=bytes(range(32)))
# HMAC-SHA256 (RFC 2104) under RING.index_key, computed once with the standard library.
BLIND_BUYER = "62fee85f653a7b989ba6810708be451b84a13a78d6a8752f988145c33a45aead"
DIGEST_ABC = "d1088cdfe3540c508f972a478e5ac3494fad81b04ce43b6ead46e33687f75413"


def test_blind_index_is_hmac_sha256_of_the_number() -> None:
    assert BuyerCipher(RING).blind_index("+8613800001234") == BLIND_BUYER


def test_keyed_digest_separates_by_purpose() -> None:
    cipher = BuyerCipher(RING)
    assert cipher.keyed_digest(b"abc", b"recording") == DIGEST_ABC
    assert cipher.keyed_digest(b"abc", b"other") != DIGEST_ABC


@pytest.mark.parametrize("before", ["", "+8613900000000", "x" * 200])
def test_a_digest_does_not_depend_on_the_ones_before_it(before: str) -> None:
    cipher = BuyerCipher(RING)
    cipher.blind_index(before)
    cipher.keyed_digest(before.encode(), b"recording")
    assert cipher.blind_index("+8613800001234") == BLIND_BUYER
    assert cipher.keyed_digest(b"abc", b"recording") == DIGEST_ABC
