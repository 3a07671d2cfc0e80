"""Run a sandbox on a free port in a background thread (for tests and scripts)."""
from __future__ import annotations

import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

from . import create_sandbox_app


@contextmanager
def running_sandbox(db_url: str | None = None, **config):
    """Yield the base URL of a threaded sandbox with its own temp SQLite DB."""
    with tempfile.TemporaryDirectory(prefix="sandbox-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'sandbox.db'}"
        app = create_sandbox_app({**config, "SANDBOX_DATABASE_URL": url})
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=5)
            app.extensions["sandbox"].engine.dispose()
