"""The status page and JSON API of Sorte: a thin front-end over :mod:`sorte.service`.

``create_app(settings)`` builds the FastAPI application; ``serve(settings, stop)`` runs it with
uvicorn inside the caller's event loop."""

from sorte.web.app import create_app
from sorte.web.server import serve

__all__ = ["create_app", "serve"]
