# One image for the web app and the workers; compose.yaml picks the command.
# Probes: the web app's is GET /health; a worker container's is `python -m service check` (exit 0 while this
# container's worker process answers from its event loop; non-zero within about 15 s of it stopping, crashing or
# blocking), e.g. HEALTHCHECK --interval=5s --retries=2 CMD ["python", "-m", "service", "check"].
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY worker_settings.py ./
RUN pip install '.[otel]' && useradd --create-home app && mkdir -p /data && chown app /data
USER app
EXPOSE 8000
CMD ["uvicorn", "service.main:app", "--host", "0.0.0.0", "--port", "8000"]
