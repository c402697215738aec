"""podium's HTTP API (the `api` extra): what the CLI does with the review queue, for the console and other tools."""

from podium.api._app import create_app

__all__ = ["create_app"]
