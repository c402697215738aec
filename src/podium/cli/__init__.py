"""The `podium` command line (Typer + Rich)."""

from podium.cli._app import app, main

__all__ = ["app", "main"]
