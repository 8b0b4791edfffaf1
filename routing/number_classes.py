"""Which numbers may serve as privacy numbers (X): number classes per numbering region.

A pool number is accepted when it belongs to a class configured for its region:

- a *kind* that phonenumbers knows and validates (``mobile``, ``fixed_line``, ...), or
- a *segment*: a dedicated range phonenumbers does not know, given as a national prefix and
  an exact national length. China's privacy-number segment is ``700`` + 12 digits, dialled
  as 15 digits.

The stored form of every X is ``+``, country code, national number: ``+8617000000001``,
``+86700123456789012``. For a 700 number that is 17 digits, beyond E.164's 15: 700 numbers
are reachable only inside China, and one form for every X keeps database keys, Redis keys,
joins and exports uniform. The national dial form is the national number
(``700123456789012``), see :func:`routing.numbers.national`.

Classes decide what may *enter* the pool. Reading a number someone dialled
(:meth:`NumberClasses.dialled`) accepts any configured segment and any valid number, so X
numbers imported under an earlier configuration keep routing until they are retired.
Caller numbers A and buyer numbers B are never read here: they keep the subscriber rules of
:mod:`routing.numbers` (a 700 number is never a valid A or B).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from routing.errors import InvalidNumber
from routing.numbers import DEFAULT_REGION, mask, national, written_as_number

_MAX_INPUT = 32
_MAX_NATIONAL = 17  # the longest national number phonenumbers parses
_SEPARATORS = str.maketrans("", "", " -.()")
_IDD = "00"  # international prefix written before a country code (China's, and most)


class NumberKind(StrEnum):
    """Number types phonenumbers validates; the setting's names."""

    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"


# Where a plan cannot tell mobile from fixed (FIXED_LINE_OR_MOBILE), the number is both.
_KIND_OF_TYPE: dict[int, frozenset[NumberKind]] = {
    PhoneNumberType.MOBILE: frozenset({NumberKind.MOBILE}),
    PhoneNumberType.FIXED_LINE: frozenset({NumberKind.FIXED_LINE}),
    PhoneNumberType.FIXED_LINE_OR_MOBILE: frozenset({NumberKind.MOBILE, NumberKind.FIXED_LINE}),
    PhoneNumberType.TOLL_FREE: frozenset({NumberKind.TOLL_FREE}),
    PhoneNumberType.PREMIUM_RATE: frozenset({NumberKind.PREMIUM_RATE}),
    PhoneNumberType.SHARED_COST: frozenset({NumberKind.SHARED_COST}),
    PhoneNumberType.VOIP: frozenset({NumberKind.VOIP}),
    PhoneNumberType.PERSONAL_NUMBER: frozenset({NumberKind.PERSONAL_NUMBER}),
    PhoneNumberType.PAGER: frozenset({NumberKind.PAGER}),
    PhoneNumberType.UAN: frozenset({NumberKind.UAN}),
    PhoneNumberType.VOICEMAIL: frozenset({NumberKind.VOICEMAIL}),
}


@dataclass(frozen=True)
class Segment:
    """National numbers of exactly ``length`` digits that start with ``prefix``."""

    prefix: str
    length: int
    name: str = ""

    def __post_init__(self) -> None:
        if not (self.prefix.isascii() and self.prefix.isdigit()) or self.prefix[0] == "0":
            raise ValueError(f"segment prefix {self.prefix!r}: digits, not starting with 0")
        if not len(self.prefix) < self.length <= _MAX_NATIONAL:
            raise ValueError(f"segment {self.prefix}: length {self.length} must be longer "
                             f"than the prefix and at most {_MAX_NATIONAL} digits")

    @property
    def label(self) -> str:
        return f"{self.name or self.prefix} ({self.length} digits)"

    def matches(self, national_number: str) -> bool:
        return len(national_number) == self.length and national_number.startswith(self.prefix)


@dataclass(frozen=True)
class RegionClasses:
    """The X classes of one numbering region (ISO 3166 code, e.g. ``CN``)."""

    region: str
    kinds: frozenset[NumberKind] = frozenset()
    segments: tuple[Segment, ...] = ()
    country_code: int = field(init=False)

    def __post_init__(self) -> None:
        code = phonenumbers.country_code_for_region(self.region)
        if code == 0 or self.region != self.region.upper():
            raise ValueError(f"unknown numbering region {self.region!r} (an ISO code like CN)")
        if not self.kinds and not self.segments:
            raise ValueError(f"region {self.region}: no number kind and no segment: "
                             "no number could be imported")
        object.__setattr__(self, "country_code", code)

    def describe(self) -> str:
        kinds = [k.value for k in NumberKind if k in self.kinds]
        return ", ".join([*kinds, *(s.label for s in self.segments)])

    def segment_of(self, national_number: str) -> Segment | None:
        return next((s for s in self.segments if s.matches(national_number)), None)


@dataclass(frozen=True)
class XNumber:
    """A number accepted as X: its stored form and the class that admitted it."""

    e164: str
    region: str
    number_class: str  # a NumberKind value or a segment label

    @property
    def national(self) -> str:
        return national(self.e164)

    @property
    def masked(self) -> str:
        return mask(self.e164)


@dataclass(frozen=True)
class NumberClasses:
    """Classes per region; ``home`` reads numbers written without a country code."""

    regions: tuple[RegionClasses, ...]
    home: str = DEFAULT_REGION

    def __post_init__(self) -> None:
        names = [r.region for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError(f"a region is listed twice: {sorted(names)}")

    @classmethod
    def of(cls, classes: Iterable[RegionClasses], home: str = DEFAULT_REGION) -> NumberClasses:
        return cls(regions=tuple(classes), home=home)

    def region(self, code: str) -> RegionClasses | None:
        return next((r for r in self.regions if r.region == code), None)

    def describe(self) -> str:
        return "; ".join(f"{r.region}: {r.describe()}" for r in self.regions)

    def pool_number(self, raw: str) -> XNumber:
        """Read ``raw`` as a pool number; :class:`InvalidNumber` (saying why) if it is not in
        any class. Messages carry no number: X numbers are reported next to them."""
        text = raw.strip()
        if not text or len(text) > _MAX_INPUT:
            raise InvalidNumber("not a phone number")
        if not written_as_number(text):  # letters, "*", "#", other scripts' digits
            raise InvalidNumber("not a valid phone number")
        found = self._segment(text)
        if found is not None:
            classes, segment, nsn = found
            return XNumber(f"+{classes.country_code}{nsn}", classes.region, segment.label)
        parsed = _parse(text, self.home)
        # number_type is UNKNOWN exactly when is_valid_number is False: one match, not two
        kinds = _KIND_OF_TYPE.get(phonenumbers.number_type(parsed), frozenset()) if parsed \
            else frozenset()
        if parsed is None or not kinds:
            raise InvalidNumber("not a valid phone number")
        region = phonenumbers.region_code_for_number(parsed) or ""
        allowed = self.region(region)
        if allowed is None:
            raise InvalidNumber(f"no number classes configured for region {region or '?'}")
        accepted = [k for k in NumberKind if k in kinds & allowed.kinds]
        if not accepted:
            what = "/".join(k.value for k in NumberKind if k in kinds) or "unknown"
            raise InvalidNumber(f"a {what} number; region {region} accepts "
                                f"{allowed.describe()}")
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return XNumber(e164, region, accepted[0].value)

    def dialled(self, raw: str | None) -> str | None:
        """The stored form of a number someone dialled (or typed to ask "is this one of
        yours?"): a configured segment or any valid number; ``None`` if it is neither."""
        if raw is None:
            return None
        text = raw.strip()
        if not text or len(text) > _MAX_INPUT or not written_as_number(text):
            return None  # phonenumbers would skip "ABC" and read other scripts' digits
        found = self._segment(text)
        if found is not None:
            return f"+{found[0].country_code}{found[2]}"
        parsed = self._valid(text)
        if parsed is None:
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    # -- reading ------------------------------------------------------------------------------
    def _segment(self, text: str) -> tuple[RegionClasses, Segment, str] | None:
        """Forms read: ``+<cc><n>``, ``00<cc><n>``, ``<cc><n>`` and, for the home region,
        ``<n>`` (separators `` -.()`` ignored). The national form is tried first."""
        digits = text.translate(_SEPARATORS)
        plus = digits.startswith("+")
        digits = digits.removeprefix("+")
        if not (digits.isascii() and digits.isdigit()):
            return None
        home = self.region(self.home)
        if not plus and home is not None and (segment := home.segment_of(digits)):
            return home, segment, digits
        candidates = [digits]
        if not plus and digits.startswith(_IDD):
            candidates.append(digits[len(_IDD):])
        for classes in self.regions:
            code = str(classes.country_code)
            for number in candidates:
                if number.startswith(code) and (segment := classes.segment_of(
                        nsn := number[len(code):])):
                    return classes, segment, nsn
        return None

    def _valid(self, text: str) -> phonenumbers.PhoneNumber | None:
        parsed = _parse(text, self.home)
        return parsed if parsed is not None and phonenumbers.is_valid_number(parsed) else None


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    with contextlib.suppress(NumberParseException):
        return phonenumbers.parse(text, region)
    return None


DEFAULT_NUMBER_CLASSES = NumberClasses.of([RegionClasses(
    "CN", kinds=frozenset({NumberKind.MOBILE, NumberKind.FIXED_LINE}),
    segments=(Segment("700", 15, "700"),))])
"""China: mobile and fixed numbers phonenumbers validates, and the 700 segment."""
