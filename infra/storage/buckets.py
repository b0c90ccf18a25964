"""Create the stack's S3 buckets, idempotently.

The bucket names come from the same settings as ``docker-compose.yml`` (``S3_BUCKET_ARTIFACTS``,
``S3_BUCKET_DATA``): the compose ``minio-init`` job creates them with ``mc mb --ignore-existing``,
this module does the same through boto3 for any S3-compatible endpoint (the loopback stack's S3
server, or a MinIO where ``mc`` is not at hand)::

    AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\
        python infra/storage/buckets.py
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("recsys.infra.buckets")

DEFAULT_ARTIFACTS_BUCKET = "mlflow"
DEFAULT_DATA_BUCKET = "recsys-data"
DEFAULT_ARTIFACTS_PREFIX = "artifacts"


def bucket_names(env: dict[str, str] | None = None) -> dict[str, str]:
    """``{"artifacts": ..., "data": ...}`` from the settings shared with docker-compose."""
    env = os.environ if env is None else env
    return {
        "artifacts": env.get("S3_BUCKET_ARTIFACTS") or DEFAULT_ARTIFACTS_BUCKET,
        "data": env.get("S3_BUCKET_DATA") or DEFAULT_DATA_BUCKET,
    }


def artifacts_destination(env: dict[str, str] | None = None) -> str:
    """The ``--artifacts-destination`` of the MLflow server, ``s3://<bucket>/<prefix>``."""
    env = os.environ if env is None else env
    prefix = (env.get("MLFLOW_ARTIFACTS_PREFIX") or DEFAULT_ARTIFACTS_PREFIX).strip("/")
    return f"s3://{bucket_names(env)['artifacts']}/{prefix}"


def ensure_buckets(endpoint_url: str, access_key: str, secret_key: str,
                   names: list[str] | None = None, region: str = "us-east-1") -> list[str]:
    """Create each bucket unless it exists; returns the names that were created."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3", endpoint_url=endpoint_url, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, region_name=region,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
    )  # fmt: skip
    created = []
    for name in names or list(bucket_names().values()):
        try:
            s3.head_bucket(Bucket=name)
            continue
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
        try:
            s3.create_bucket(Bucket=name)
            created.append(name)
        except ClientError as exc:  # created concurrently: as good as created here
            if exc.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou", "BucketAlreadyExists",
            ):
                raise
    return created


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    if not endpoint:
        log.error("set AWS_ENDPOINT_URL to the S3 endpoint, e.g. http://127.0.0.1:9000")
        return 2
    created = ensure_buckets(endpoint, os.environ.get("AWS_ACCESS_KEY_ID", ""),
                             os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    names = ", ".join(bucket_names().values())
    log.info("buckets on %s: %s (created: %s)", endpoint, names, ", ".join(created) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
