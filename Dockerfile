FROM python:3.11-slim
RUN useradd --create-home --uid 10001 picjobs
WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY manifests ./manifests
RUN pip install --no-cache-dir . && chown -R picjobs /app
USER picjobs
ENTRYPOINT ["picjobs"]
CMD ["--help"]
