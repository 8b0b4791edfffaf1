"""RFC 9457 problem details: every error is ``application/problem+json`` with a stable ``code``.

``PrivnumError`` subclasses map to a status by their ``code``; framework errors (validation,
unknown route, wrong method) are rewritten into the same shape. Nothing here ever echoes a
request body (it could hold a buyer number).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from routing.errors import (
    CallerCoolingDown,
    ErrorCode,
    IdempotencyKeyInUse,
    PrivnumError,
    RevealRateLimited,
    Unauthenticated,
)

PROBLEM_JSON = "application/problem+json"
_LOG = logging.getLogger("privnum.api")

# The only place a domain error becomes an HTTP status: every ErrorCode has one (a test checks).
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.PRIVNUM_ERROR: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_NUMBER: 422,
    ErrorCode.NOT_MOBILE_NUMBER: 422,
    ErrorCode.INVALID_INPUT: 422,
    ErrorCode.INVALID_BINDING_REQUEST: 422,
    ErrorCode.INVALID_CALL_LOG_QUERY: 422,
    ErrorCode.CONFLICT: 409,
    ErrorCode.CALLER_REFUSED: 409,
    ErrorCode.SERVICE_NOT_ENABLED: 409,
    ErrorCode.CALLER_NOT_APPROVED: 409,
    ErrorCode.BINDING_NOT_ACTIVE: 409,
    ErrorCode.REVEAL_RATE_LIMITED: 429,
    ErrorCode.POOL_EXHAUSTED: 503,
    ErrorCode.CALLER_COOLING_DOWN: 503,
    ErrorCode.STORE_UNAVAILABLE: 503,
    ErrorCode.AMI_UNAVAILABLE: 503,
    ErrorCode.CLICK_TO_CALL_UNAVAILABLE: 503,
    ErrorCode.CALL_LOG_UNAVAILABLE: 503,
    ErrorCode.CONFIGURATION_ERROR: 500,
    ErrorCode.SCHEMA_DRIFT: 500,
    ErrorCode.INVALID_IDEMPOTENCY_KEY: 422,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: 409,
}


class HttpCode(StrEnum):
    """Codes of the answers the HTTP layer gives itself (no domain error behind them)."""

    BAD_REQUEST = "bad_request"
    INVALID_REQUEST = "invalid_request"  # the body or a parameter does not validate
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    REQUEST_TIMEOUT = "request_timeout"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    HTTP_ERROR = "http_error"
    INTERNAL_ERROR = "internal_error"


# Every code a problem response can carry (the OpenAPI ``ProblemCode`` enum).
PROBLEM_CODES: tuple[str, ...] = tuple(sorted({c.value for c in (*ErrorCode, *HttpCode)}))
_HTTP_CODES: dict[int, HttpCode] = {
    400: HttpCode.BAD_REQUEST, 401: HttpCode.UNAUTHENTICATED, 404: HttpCode.NOT_FOUND,
    405: HttpCode.METHOD_NOT_ALLOWED, 408: HttpCode.REQUEST_TIMEOUT,
    413: HttpCode.PAYLOAD_TOO_LARGE, 415: HttpCode.UNSUPPORTED_MEDIA_TYPE,
    422: HttpCode.INVALID_REQUEST, 500: HttpCode.INTERNAL_ERROR}
_TITLES: dict[int, str] = {
    400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
    415: "Unsupported media type", 422: "Invalid request", 429: "Too many requests",
    500: "Internal error", 503: "Service unavailable",
}


class Problem(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "urn:privnum:problem:not_found", "title": "Not found", "status": 404,
        "detail": "no such binding", "code": "not_found"}]})

    type: str = Field(description="URI naming the problem type (urn:privnum:problem:<code>).")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field validation errors (invalid_request only).")


def problem(status: int, code: str, detail: str, *, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:privnum:problem:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(error: PrivnumError) -> int:
    return STATUS_BY_CODE[error.code]


def from_error(error: PrivnumError) -> JSONResponse:
    status = status_of(error)
    headers: dict[str, str] = {}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="privnum"'
    if isinstance(error, RevealRateLimited | CallerCoolingDown | IdempotencyKeyInUse):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if status >= 500:
        _LOG.warning("api error code=%s: %s", error.code, error)
    return problem(status, error.code, str(error) or error.code, headers=headers or None)


def _clean_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        # Never echo "input": it could be a buyer number.
        out.append({"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
                    "type": str(err.get("type", ""))})
    return out


def install(app: FastAPI) -> None:
    async def on_privnum(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PrivnumError)
        return from_error(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _clean_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return problem(422, HttpCode.INVALID_REQUEST, f"{where}: {first['msg']}",
                       errors=errors)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, HttpCode.HTTP_ERROR)
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, code, str(exc.detail), headers=headers)

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        _LOG.error("api internal error: %s", type(exc).__name__)
        return problem(500, HttpCode.INTERNAL_ERROR, "internal error")

    app.add_exception_handler(PrivnumError, on_privnum)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problem statuses an operation can answer with."""
    # 403/404 on every authenticated operation: X-Privnum-Account with a credential other than
    # the platform's, or naming an unknown account.
    base = {401, 403, 404, 413, 415, 422}
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(base | set(statuses)):
        out[status] = {
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"},
                                       "example": example_problem(status)}},
        }
    return out


def example_problem(status: int) -> dict[str, Any]:
    """An example body of a problem with this status (for the OpenAPI document)."""
    code: str = _HTTP_CODES.get(status) or next(
        (c for c, s in STATUS_BY_CODE.items() if s == status), HttpCode.HTTP_ERROR)
    return {"type": f"urn:privnum:problem:{code}", "title": _TITLES.get(status, "Error"),
            "status": status, "detail": f"what went wrong ({code})", "code": str(code)}
