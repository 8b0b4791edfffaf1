"""The benchmark's webhook receiver, in a process of its own: ``python -m
bench.webhook_receiver PORT``. Counts events and each one's lag (receipt minus the envelope's
``recorded_at``); ``GET /stats`` returns them, ``POST /reset`` starts over."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any

import uvicorn

Scope = dict[str, Any]


def app_factory() -> Any:
    lags: list[float] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.time()
        out = b""
        if scope["method"] == "POST" and scope["path"] == "/hook":
            for event in json.loads(body)["events"]:
                recorded = datetime.fromisoformat(event["recorded_at"].replace("Z", "+00:00"))
                lags.append(now - recorded.timestamp())
        elif scope["path"] == "/stats":
            out = json.dumps({"count": len(lags), "lags": lags}).encode()
        elif scope["path"] == "/reset":
            lags.clear()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    return app


if __name__ == "__main__":
    uvicorn.run(app_factory(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
