"""The HTTP server: ``create_app(settings)`` builds the FastAPI app that ``clearfill serve`` runs."""

from .app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
