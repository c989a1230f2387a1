# Production image: the Sorte runtime on an official Python base.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SORTE_DATA_DIR=/data
RUN pip install --no-cache-dir uv && useradd --create-home --uid 10001 sorte
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sorte ./sorte
COPY strategies ./strategies
COPY sandbox ./sandbox
COPY guardian ./guardian
COPY commander ./commander
COPY knowledge ./knowledge
RUN uv pip install --system --no-cache -e . && mkdir -p /data && chown sorte /data
USER sorte
VOLUME ["/data"]
ENTRYPOINT ["sorte"]
CMD ["run"]
