"""Create the stack's S3 buckets, idempotently; save and restore every object of an S3 server.

The bucket names come from the same settings as ``docker-compose.yml`` (``S3_BUCKET_ARTIFACTS``,
``S3_BUCKET_DATA``): the compose ``minio-init`` job creates them with ``mc mb --ignore-existing``,
this module does the same through boto3 for any S3-compatible endpoint (the loopback stack's S3
server, or a MinIO where ``mc`` is not at hand)::

    AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\
        python infra/storage/buckets.py

``save_objects`` / ``restore_objects`` copy the buckets of an S3 server to a folder and back: the
loopback stack's S3 server (moto) keeps objects in memory only, so ``stack.py`` saves them when it
stops that server and restores them when it starts it again. The folder holds ``index.json``
(bucket -> key -> blob, content type, user metadata) and ``blobs/<sha256>``; a save is written
beside the previous one and swapped in whole, so an interrupted save leaves the last good copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

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


def client(endpoint_url: str, access_key: str, secret_key: str, region: str = "us-east-1"):
    """A boto3 S3 client for ``endpoint_url`` with short timeouts and a few retries."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
        ),
    )


def ensure_buckets(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    names: list[str] | None = None,
    region: str = "us-east-1",
) -> list[str]:
    """Create each bucket unless it exists; returns the names that were created."""
    from botocore.exceptions import ClientError

    s3 = client(endpoint_url, access_key, secret_key, region)
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
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise
    return created


def save_objects(s3, folder: Path) -> int:
    """Copy every object of every bucket behind ``s3`` into ``folder``; returns the count.

    The new copy is complete before it replaces the previous one (``folder`` itself is swapped).
    """
    folder = Path(folder)
    work = folder.with_name(folder.name + ".saving")
    shutil.rmtree(work, ignore_errors=True)
    (work / "blobs").mkdir(parents=True)
    index: dict[str, dict[str, dict]] = {}
    count = 0
    for bucket in (b["Name"] for b in s3.list_buckets().get("Buckets", [])):
        objects = index.setdefault(bucket, {})
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                obj = s3.get_object(Bucket=bucket, Key=item["Key"])
                body = obj["Body"].read()
                digest = hashlib.sha256(body).hexdigest()
                blob = work / "blobs" / digest
                if not blob.exists():
                    blob.write_bytes(body)
                objects[item["Key"]] = {
                    "blob": digest,
                    "content_type": obj.get("ContentType"),
                    "metadata": obj.get("Metadata") or {},
                }
                count += 1
    (work / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    work.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return count


def restore_objects(s3, folder: Path) -> int:
    """Put back what ``save_objects`` wrote into ``folder`` (buckets created as needed);
    returns the number of objects. A missing folder restores nothing."""
    folder = Path(folder)
    index_path = folder / "index.json"
    if not index_path.exists():
        return 0
    index = json.loads(index_path.read_text())
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    count = 0
    for bucket, objects in index.items():
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
        for key, entry in objects.items():
            extra = {"Metadata": entry.get("metadata") or {}}
            if entry.get("content_type"):
                extra["ContentType"] = entry["content_type"]
            body = (folder / "blobs" / entry["blob"]).read_bytes()
            s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
            count += 1
    return count


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    if not endpoint:
        log.error("set AWS_ENDPOINT_URL to the S3 endpoint, e.g. http://127.0.0.1:9000")
        return 2
    created = ensure_buckets(
        endpoint,
        os.environ.get("AWS_ACCESS_KEY_ID", ""),
        os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
    )
    names = ", ".join(bucket_names().values())
    log.info("buckets on %s: %s (created: %s)", endpoint, names, ", ".join(created) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
