"""Mounting the web console on the app: its routers, static assets and security headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.console import pages_calls, pages_exports, pages_ops
from api.console.exports import ExportJobs
from api.console.options import ConsoleOptions
from api.console.session import SessionCodec
from api.console.web import HERE, PREFIX, ConsoleState, SecurityHeaders


def install(app: FastAPI, options: ConsoleOptions) -> ConsoleState:
    """Mount the console on ``app``; the returned state's ``jobs.aclose()`` ends running
    exports at shutdown."""
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes
    state = ConsoleState(options=options,
                         codec=SessionCodec(options.session_key, options.session_seconds),
                         jobs=ExportJobs(options.export_dir, options.export_writer),
                         templates=templates)
    app.state.console = state
    app.include_router(pages_calls.router)
    app.include_router(pages_exports.router)
    app.include_router(pages_ops.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_middleware(SecurityHeaders)
    return state
