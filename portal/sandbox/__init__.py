"""A stand-in tax bureau for the RPA, 乐企 and 税控 channels (separate Flask service).

It keeps its own database (plain SQLAlchemy 2), issues invoices asynchronously, produces
deterministic downloads, and injects every failure the real channels show, switchable
per taxpayer over ``/_admin``.  See docs/channels.md.
"""
from __future__ import annotations

from flask import Flask

from .state import Sandbox, load_config


def create_sandbox_app(config: dict | None = None) -> Flask:
    """Build the sandbox app; keys may be given with or without the SANDBOX_ prefix."""
    from . import admin, files, protocol

    app = Flask(__name__)
    app.config.update(load_config(config))
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    app.extensions["sandbox"] = Sandbox(app.config)
    app.register_blueprint(admin.bp)
    app.register_blueprint(files.bp)
    app.register_blueprint(protocol.bp)
    return app


__all__ = ["create_sandbox_app"]
