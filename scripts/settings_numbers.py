"""Settings sections of bindings and numbers: binding lifetimes, extension mode, the pool's
number classes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from routing.number_classes import NumberKind, RegionClasses, Segment


class BindingSettings(BaseModel):
    """Bindings (X bound to an order's A and B)."""

    ttl_seconds: int = Field(default=86_400, ge=60, description="How long a binding lives.")
    cooldown_seconds: int = Field(default=3_600, ge=0,
                                  description="How long a released X rests before reuse.")
    default_region: str = Field(default="CN",
                                description="Region of numbers given without a country code.")
    expired_lookback_days: int = Field(
        default=7, ge=0, description="How far back a reject looks for an expired binding, to "
        "say 'expired' rather than 'unauthorized'.")
    expiry_sweep_seconds: float = Field(
        default=30.0, ge=0, description="'privnum serve' marks bindings past their expiry as "
        "expired (and sends binding.expired) every this many seconds; 0: only when a change "
        "meets them.")


class ExtensionSettings(BaseModel):
    """Extension mode: one virtual number X serves many bindings, each with an extension."""

    mode_policy: Literal["axb_then_extension", "extension_then_axb", "axb", "extension"] = (
        Field(default="axb_then_extension", description="Which pool mode a new binding takes "
              "when the request names none: AXB first with extension numbers as overflow "
              "(default), extension first, or one mode only."))
    digit_timeout_seconds: int = Field(
        default=5, ge=1, le=99, description="How long the dialplan waits for the extension "
        "after the prompt.")
    max_tries: int = Field(default=3, ge=1, le=9, description="How many times a caller may "
                           "enter the extension (a wrong one or none) before the call is "
                           "refused (extension_invalid / extension_timeout).")
    prompt: str = Field(default="extension", pattern=r"^[A-Za-z0-9_/&-]+$",
                        description="Sound file(s) asking for the extension (&-joined).")
    retry_prompt: str = Field(default="pbx-invalid", pattern=r"^[A-Za-z0-9_/&-]+$",
                              description="Sound file(s) after a wrong extension.")
    directory_refresh_seconds: float = Field(
        default=10.0, ge=0, description="How often the call path re-reads which pool numbers "
        "are extension numbers.")


class SegmentSettings(BaseModel):
    """A dedicated number segment: national numbers of exactly ``length`` digits starting
    with ``prefix`` (China's privacy-number segment: prefix 700, length 15)."""

    model_config = ConfigDict(extra="forbid")
    prefix: str
    length: int
    name: str = ""


class NumberClassSettings(BaseModel):
    """What one numbering region accepts as a pool number (X). An entry replaces the default
    for its region completely: list every kind and segment the region should accept."""

    model_config = ConfigDict(extra="forbid")
    kinds: list[NumberKind] = []
    segments: list[SegmentSettings] = []


def _default_number_classes() -> dict[str, NumberClassSettings]:
    return {"CN": NumberClassSettings(
        kinds=[NumberKind.MOBILE, NumberKind.FIXED_LINE],
        segments=[SegmentSettings(prefix="700", length=15, name="700")])}


class PoolSettings(BaseModel):
    """The virtual-number pool."""

    number_classes: dict[str, NumberClassSettings] = Field(
        default_factory=_default_number_classes,
        description="Per region (ISO code): the number kinds and segments a pool number (X) "
        "must belong to. An entry replaces its region's default completely.")

    @field_validator("number_classes", mode="before")
    @classmethod
    def _region_codes(cls, value: Any) -> Any:
        # Region codes in any case: environment variable names arrive lower-cased.
        if isinstance(value, dict):
            return {str(k).upper(): v for k, v in value.items()}
        return value

    @field_validator("number_classes")
    @classmethod
    def _check_classes(cls, value: dict[str, NumberClassSettings]
                       ) -> dict[str, NumberClassSettings]:
        _region_classes(value)  # a bad region, prefix or length is refused at start-up
        return value

    def region_classes(self) -> list[RegionClasses]:
        return _region_classes(self.number_classes)


def _region_classes(classes: dict[str, NumberClassSettings]) -> list[RegionClasses]:
    return [RegionClasses(region, kinds=frozenset(c.kinds),
                          segments=tuple(Segment(s.prefix, s.length, s.name)
                                         for s in c.segments))
            for region, c in classes.items()]
