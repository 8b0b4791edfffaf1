"""Every domain error code has exactly one HTTP status, decided in ``api/problems.py``."""

from __future__ import annotations

import pytest

from api.problems import STATUS_BY_CODE, from_error
from routing import errors
from routing.errors import ErrorCode, PrivnumError


def _domain_errors() -> list[type[PrivnumError]]:
    found = [v for v in vars(errors).values()
             if isinstance(v, type) and issubclass(v, PrivnumError)]
    return sorted(found, key=lambda cls: cls.__name__)


def test_every_error_code_has_an_http_status() -> None:
    assert set(STATUS_BY_CODE) == set(ErrorCode)


@pytest.mark.parametrize("cls", _domain_errors(), ids=lambda cls: cls.__name__)
def test_each_domain_error_answers_with_its_own_code(cls: type[PrivnumError]) -> None:
    error = cls.__new__(cls)  # bypass constructors that need domain values
    Exception.__init__(error, "something went wrong")
    if isinstance(error, errors.RevealRateLimited | errors.CallerCoolingDown):
        error.retry_after_seconds = 7
    response = from_error(error)
    assert response.status_code == STATUS_BY_CODE[cls.code]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f'"code":"{cls.code.value}"' in response.body.decode()


def test_subclass_codes_are_their_own() -> None:
    assert errors.ClickToCallUnavailable.code is not errors.AmiUnavailable.code
    assert errors.NotMobileNumber.code is not errors.InvalidNumber.code
    assert STATUS_BY_CODE[errors.CallerRefused.code] == STATUS_BY_CODE[errors.Conflict.code]
