#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (idempotent).
# Installs docker.io with apt-get when dockerd is missing, starts dockerd in the
# background when the socket does not answer, then waits (bounded) for `docker info`.
set -euo pipefail

WAIT_S="${SORTE_DOCKER_WAIT_S:-60}"
LOG="${SORTE_DOCKERD_LOG:-/tmp/sorte-dockerd.log}"

if docker info >/dev/null 2>&1; then
    echo "ensure-docker: engine already answers"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "ensure-docker: installing docker.io"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q docker.io
fi

if ! docker info >/dev/null 2>&1; then
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        echo "ensure-docker: starting dockerd (log: $LOG)"
        $SUDO nohup dockerd >"$LOG" 2>&1 &
    fi
fi

for _ in $(seq "$WAIT_S"); do
    if docker info >/dev/null 2>&1; then
        echo "ensure-docker: engine ready"
        exit 0
    fi
    sleep 1
done
echo "ensure-docker: engine did not answer within ${WAIT_S}s; see $LOG" >&2
exit 1
