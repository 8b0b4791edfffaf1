"""What the CDR tests share: the dialplan's field names and the recorded AMI transcripts."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from agi import channel_vars as cv
from agi.ami_cdr import FIELD_NAMES as NAMES
from routing.cdr import CdrEvent, ami_to_fields, parse_cdr, split_ami_stream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"

__all__ = ["FIXTURES", "NAMES", "recorded_cdrs"]


def recorded_cdrs(name: str) -> list[CdrEvent]:
    """Every ``Cdr`` event of a recorded transcript, parsed (the lab ran in UTC)."""
    _, messages = split_ami_stream((FIXTURES / name).read_bytes())
    return [parse_cdr(ami_to_fields(m, cv.CDR_AMI_HEADERS), NAMES, UTC)
            for m in messages if m.get("Event") == "Cdr"]
