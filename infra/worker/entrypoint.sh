#!/bin/sh
# prefect-worker: register the deployments of prefect.yaml, then poll the process work pool.
# Schedules live on the Prefect server, so restarting this container never pauses them.
set -eu
cd "$RECSYS_CODE_DIR"

attempt=1
until prefect --no-prompt deploy --all; do
    if [ "$attempt" -ge 10 ]; then
        echo "prefect-worker: prefect deploy --all failed $attempt times; giving up" >&2
        exit 1
    fi
    attempt=$((attempt + 1))
    sleep 3
done

exec prefect worker start --pool "${PREFECT_WORK_POOL:-recsys-process}" --type process \
    --name "${PREFECT_WORKER_NAME:-compose-worker}" --with-healthcheck
