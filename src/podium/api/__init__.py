"""podium's HTTP API (the `api` extra): what the CLI does with the review queue, for the console and other tools.
Every request is authenticated by a person's key (`Authorization: Bearer`)."""

from podium.api._app import create_app
from podium.api._auth import LOOPBACK_NAMES, Gatekeeper

__all__ = ["LOOPBACK_NAMES", "Gatekeeper", "create_app"]
