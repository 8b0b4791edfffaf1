"""Phone-number parsing, validation and masking: the only place numbers are interpreted."""

from __future__ import annotations

import contextlib
import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from routing.errors import InvalidNumber, NotMobileNumber

DEFAULT_REGION = "CN"
_CN = "+86"  # E.164 prefix of the default region, for allocation-free hot paths
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# Caller-ID values Asterisk and carriers use for a withheld or missing number.
_ANONYMOUS = frozenset({"", "anonymous", "unknown", "restricted", "private", "unavailable"})
# What mask() returns: a masked number (e.g. a CDR's caller ID once privnum has decided) is
# already as short as it may be, and masking it again must not shorten it further.
_MASKED = re.compile(r"[0-9]{3}\*{4}[0-9]{4}|\*{1,3}[0-9]{4}|\*{1,4}", re.ASCII)
# What a phone number may be written with: ASCII digits, one leading "+", and the separators
# people type. phonenumbers is more lenient (it skips leading junk such as "ABC", reads letters
# as keypad digits and other scripts' digits as 0-9): a caller ID "ABC13900000100" or in
# Arabic-Indic digits would otherwise be taken for the bound number.
_WRITTEN = re.compile(r"\+?[(0-9][0-9 ()./-]*", re.ASCII)


def written_as_number(text: str) -> bool:
    """``text`` (stripped) is written the way a phone number may be: ASCII digits, one leading
    ``+``, separators; no letters, ``*``, ``#`` or other scripts' digits."""
    return _WRITTEN.fullmatch(text) is not None


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber:
    text = raw.strip()
    if not text or len(text) > 32 or not written_as_number(text):
        raise InvalidNumber(f"not a phone number: {mask(text)!r}")
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {mask(text)!r}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"not a valid phone number: {mask(text)!r}")
    return parsed


def _plain_national(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(text, region)`` returns for a plain national number, built
    without the parse (two thirds of a caller's cost on the call path), or None when ``text``
    is anything else and must take the full parse.

    Plain: ASCII digits only, no leading 0 (a trunk prefix, or Italy's leading zero), not
    starting with the region's country code, its international prefix or its national
    prefix/carrier code (the only steps by which parse would change the digits). For such
    text parse keeps the digits as the national number of the region's country code."""
    if not (3 <= len(text) <= 17 and text.isascii() and text.isdigit()) or text[0] == "0":
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None or metadata.country_code is None:
        return None
    if text.startswith(str(metadata.country_code)):
        return None
    for prefix in (metadata.international_prefix, metadata.national_prefix_for_parsing):
        if prefix and re.match(prefix, text):
            return None
    return phonenumbers.PhoneNumber(country_code=metadata.country_code,
                                    national_number=int(text))


def _plain_international(text: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(text, region)`` returns for ``+`` and digits (E.164, the
    form stores and platforms pass), built without the parse; None when ``text`` is anything
    else and must take the full parse.

    The country code is the first prefix of one to three digits that is one, as parse takes
    it; the rest is kept as the national number unless it starts with 0 or with the
    country's national prefix/carrier code (which parse may strip)."""
    digits = text[1:]
    if not (text[:1] == "+" and 3 <= len(digits) <= 20 and digits.isascii()
            and digits.isdigit()) or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if not 2 <= len(national) <= 17 or national[0] == "0":
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code))
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):
        return None
    return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))


def normalize(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the E.164 form of ``raw`` (+86, 0086, 86, spaces and dashes accepted; letters,
    ``*``, ``#`` and digits other than ASCII 0-9 refused)."""
    text = raw.strip()
    plain = _plain_international(text) if text[:1] == "+" else _plain_national(text, region)
    if plain is not None and phonenumbers.is_valid_number(plain):
        return phonenumbers.format_number(plain, PhoneNumberFormat.E164)
    # Anything else, and an invalid plain number (so that it fails with parse's own words).
    return phonenumbers.format_number(_parse(raw, region), PhoneNumberFormat.E164)


def normalize_mobile(raw: str, region: str = DEFAULT_REGION) -> str:
    """Like :func:`normalize` but refuses anything that is not a mobile number."""
    parsed = _parse(raw, region)
    if phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        raise NotMobileNumber(f"not a mobile number: {mask(raw)!r}")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def try_normalize(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """E.164 or ``None`` for a missing, anonymous or unparseable caller ID."""
    if raw is None or raw.strip().lower() in _ANONYMOUS:
        return None
    try:
        return normalize(raw, region)
    except InvalidNumber:
        return None


def national(e164: str) -> str:
    """The national significant number of an E.164 number (what a CN trunk dials)."""
    if e164.startswith(_CN) and e164[1:].isdigit():
        return e164[len(_CN):]  # the hot path: no parse for the home country
    return str(phonenumbers.parse(e164, None).national_number)


def _national_digits(number: str) -> str:
    """The national number's digits of anything but a plain ``+86`` number (best effort)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if number.startswith("+"):
        with contextlib.suppress(NumberParseException):
            digits = str(phonenumbers.parse(number, None).national_number)
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) in (13, 17):  # + a mobile or a 700 number
        digits = digits[2:]
    return digits


def mask(number: str) -> str:
    """Mask a number for logs and exports: ``+8613812345678`` -> ``138****5678``.

    Works on any input (even garbage) and never returns more than the first three and the
    last four digits of the national number. Idempotent: a masked number is returned as is.
    """
    if number.startswith(_CN) and number[1:].isdigit():
        # The usual number (the call path masks one or two per call): nothing to filter.
        digits = number[len(_CN):]
    elif _MASKED.fullmatch(number):
        return number
    else:
        digits = _national_digits(number)
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) <= 7:
        return "*" * (len(digits) - 4) + digits[-4:]
    return digits[:3] + "****" + digits[-4:]
