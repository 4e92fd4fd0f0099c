"""The uvicorn target: `uvicorn service.main:app`."""

from service.logs import configure_logging
from service.web.app import create_app

configure_logging()
app = create_app()
