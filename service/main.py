"""The uvicorn target: `uvicorn service.main:app`."""

from .app import create_app
from .logs import configure_logging

configure_logging()
app = create_app()
