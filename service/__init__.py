"""fastapi-arq-jobs: background jobs for FastAPI on arq and Redis."""
