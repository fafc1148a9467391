"""The HTTP server: ``create_app(settings)`` builds the ASGI app that ``clearfill serve`` runs."""

from .app import ServerSettings, create_app, runs

__all__ = ["ServerSettings", "create_app", "runs"]
