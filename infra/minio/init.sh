#!/bin/sh
# One-shot job of docker-compose.yml (minio-init): the buckets, and one user per application,
# each allowed one bucket and nothing else. The applications never see MinIO's root credentials.
#   S3_MLFLOW_ACCESS_KEY  the MLflow server: the artifacts bucket (read, write, delete)
#   S3_WORKER_ACCESS_KEY  the worker: the data bucket (read, write; no delete); no artifact
#                         access at all, artifacts go through the MLflow server's proxy
# Idempotent: rerunning it changes nothing. The minio/mc image has a shell but no grep or jq.
# The root credentials come in MC_HOST_local (mc reads an alias from its environment), never on
# a command line; the applications' secret keys are arguments of `mc admin user add` (which has
# no other way to take them) inside this one-shot container only.
set -eu
: "${MC_HOST_local:?set MC_HOST_local=http://ROOT_USER:ROOT_PASSWORD@minio:9000}"

mc mb --ignore-existing "local/$S3_BUCKET_ARTIFACTS"
mc mb --ignore-existing "local/$S3_BUCKET_DATA"

# policy NAME BUCKET OBJECT-ACTIONS: listing of BUCKET, and OBJECT-ACTIONS on its objects
policy() {
    printf '%s\n' \
      '{' \
      '  "Version": "2012-10-17",' \
      '  "Statement": [' \
      '    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket",' \
      '      "s3:ListBucketMultipartUploads"],' \
      "     \"Resource\": [\"arn:aws:s3:::$2\"]}," \
      "    {\"Effect\": \"Allow\", \"Action\": [$3]," \
      "     \"Resource\": [\"arn:aws:s3:::$2/*\"]}" \
      '  ]' \
      '}' > "/tmp/$1.json"
    mc admin policy create local "$1" "/tmp/$1.json" >/dev/null
}

# user ACCESS-KEY SECRET-KEY POLICY
user() {
    mc admin user add local "$1" "$2" >/dev/null
    # attaching an already attached policy is an error for mc; it is the state we want
    mc admin policy attach local "$3" --user "$1" >/dev/null 2>&1 || true
}

policy recsys-mlflow "$S3_BUCKET_ARTIFACTS" \
    '"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"'
policy recsys-worker "$S3_BUCKET_DATA" \
    '"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"'
user "$S3_MLFLOW_ACCESS_KEY" "$S3_MLFLOW_SECRET_KEY" recsys-mlflow
user "$S3_WORKER_ACCESS_KEY" "$S3_WORKER_SECRET_KEY" recsys-worker
echo "minio-init: buckets $S3_BUCKET_ARTIFACTS, $S3_BUCKET_DATA;" \
    "users $S3_MLFLOW_ACCESS_KEY (recsys-mlflow), $S3_WORKER_ACCESS_KEY (recsys-worker)"
