"""The web console and user portal: server-rendered pages plus small same-origin scripts."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from grantflow.web.pages import STATIC_DIR, router


def install(app: FastAPI) -> None:
    """Serve the pages and their static files from ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)


__all__ = ["install"]
