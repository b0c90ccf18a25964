#!/bin/sh
# prefect-worker: poll the process work pool. The deployments are applied by the one-shot
# prefect-deploy job before the worker starts (docker-compose.yml), never here: restarting the
# worker leaves the deployments, their schedules and their paused state as they are.
set -eu
cd "$RECSYS_CODE_DIR"
exec prefect worker start --pool "${PREFECT_WORK_POOL:-recsys-process}" --type process \
    --name "${PREFECT_WORKER_NAME:-compose-worker}" --with-healthcheck
