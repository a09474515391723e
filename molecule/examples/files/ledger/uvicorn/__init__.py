"""Test-ground shim: only uvicorn.workers.UvicornWorker, for gunicorn's --worker-class."""
