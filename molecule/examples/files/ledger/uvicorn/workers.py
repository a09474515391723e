"""Test-ground shim of uvicorn.workers: the example's --worker-class resolves to gunicorn's sync worker."""

from __future__ import annotations

from gunicorn.workers.sync import SyncWorker


class UvicornWorker(SyncWorker):
    """Serves the WSGI stand-in app as gunicorn's sync worker does."""
