"""Bodies of the operations endpoints: liveness (``/livez``), health (``/healthz``), and the
example of ``/metrics``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from api.schemas import examples

_CHECK = {"name": "database", "ok": True, "detail": "", "required": True}


class Live(BaseModel):
    model_config = examples({"status": "ok"})

    status: Literal["ok"] = "ok"


METRICS_EXAMPLE = ('# HELP privnum_calls_total Routed calls by outcome (reason code).\n'
                   '# TYPE privnum_calls_total counter\n'
                   'privnum_calls_total{outcome="bridged"} 42.0\n')


class HealthCheck(BaseModel):
    model_config = examples(_CHECK)

    name: str
    ok: bool
    detail: str
    required: bool


class Health(BaseModel):
    model_config = examples({"status": "ok", "checks": [
        _CHECK, {"name": "redis", "ok": True, "detail": "not configured", "required": False}]})

    status: Literal["ok", "degraded", "down"]
    checks: list[HealthCheck]
