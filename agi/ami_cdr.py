"""AMI ``Cdr`` events and safety-net CSV rows -> :class:`routing.cdr.CdrEvent`.

The field and header names are the dialplan contract in :mod:`agi.channel_vars`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Mapping
from datetime import tzinfo
from pathlib import Path
from typing import TextIO

from agi import channel_vars as cv
from routing.cdr import CdrEvent, CdrFieldNames, ami_to_fields, parse_cdr
from routing.errors import CdrFormatError
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses

FIELD_NAMES = CdrFieldNames(
    binding=cv.CDR_BINDING,
    shop=cv.CDR_SHOP,
    order=cv.CDR_ORDER,
    x=cv.CDR_X,
    reason=cv.CDR_REASON,
    direction=cv.CDR_DIRECTION,
    caller=cv.CDR_CALLER,
    ext=cv.CDR_EXT,
    recording=cv.CDR_RECORDING,
)
CSV_COLUMNS: tuple[str, ...] = tuple(cv.CDR_CSV_COLUMNS)
CSV_FILE = cv.CDR_CSV_FILE


def cdr_from_ami(headers: Mapping[str, str], zone: tzinfo, system_name: str = "",
                 classes: NumberClasses = DEFAULT_NUMBER_CLASSES) -> CdrEvent:
    """Parse one AMI ``Cdr`` event (headers as received)."""
    return parse_cdr(ami_to_fields(headers, cv.CDR_AMI_HEADERS), FIELD_NAMES, zone, system_name,
                     classes)


def iter_csv_cdrs(stream: TextIO, zone: tzinfo, system_name: str,
                  errors: list[str] | None = None,
                  classes: NumberClasses = DEFAULT_NUMBER_CLASSES) -> Iterator[CdrEvent]:
    """Read the ``cdr_custom`` safety-net file (no header, columns :data:`CSV_COLUMNS`).

    A malformed line is skipped and described in ``errors`` (line number only: the line may
    hold raw numbers).
    """
    for lineno, row in enumerate(csv.reader(stream), start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < len(CSV_COLUMNS) - len(cv.CDR_CSV_LATER):
            if errors is not None:
                errors.append(f"line {lineno}: {len(row)} columns, expected {len(CSV_COLUMNS)}")
            continue
        try:
            yield parse_cdr(dict(zip(CSV_COLUMNS, row, strict=False)), FIELD_NAMES, zone,
                            system_name, classes)
        except CdrFormatError as exc:
            if errors is not None:
                errors.append(f"line {lineno}: {exc}")


def csv_path(directory: Path) -> Path:
    """The safety-net file inside Asterisk's ``cdr-custom`` directory."""
    return directory / CSV_FILE


def csv_problem(path: Path) -> str | None:
    """Why nothing can be re-imported from ``path``, or None. A missing file in a readable
    directory is fine: Asterisk creates it with the first call."""
    directory = path.parent
    if not directory.is_dir():
        return f"{directory} does not exist here"
    if not os.access(directory, os.R_OK | os.X_OK):
        return f"{directory} is not readable by this user"
    if path.exists() and not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    return None
