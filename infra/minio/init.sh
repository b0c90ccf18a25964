#!/bin/sh
# One-shot job of docker-compose.yml (minio-init): the buckets, and an application user that may
# read and write only them. The applications never see MinIO's root credentials.
# Idempotent: rerunning it changes nothing. The minio/mc image has a shell but no grep or jq.
set -eu

mc alias set local "http://minio:9000" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

mc mb --ignore-existing "local/$S3_BUCKET_ARTIFACTS"
mc mb --ignore-existing "local/$S3_BUCKET_DATA"

printf '%s\n' \
  '{' \
  '  "Version": "2012-10-17",' \
  '  "Statement": [' \
  '    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket",' \
  '      "s3:ListBucketMultipartUploads"],' \
  "     \"Resource\": [\"arn:aws:s3:::$S3_BUCKET_ARTIFACTS\", \"arn:aws:s3:::$S3_BUCKET_DATA\"]}," \
  '    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",' \
  '      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],' \
  "     \"Resource\": [\"arn:aws:s3:::$S3_BUCKET_ARTIFACTS/*\", \"arn:aws:s3:::$S3_BUCKET_DATA/*\"]}" \
  '  ]' \
  '}' > /tmp/recsys-app-policy.json

mc admin user add local "$S3_APP_ACCESS_KEY" "$S3_APP_SECRET_KEY" >/dev/null
mc admin policy create local recsys-app /tmp/recsys-app-policy.json >/dev/null
# attaching an already attached policy is an error for mc; it is the state we want
mc admin policy attach local recsys-app --user "$S3_APP_ACCESS_KEY" >/dev/null 2>&1 || true
echo "minio-init: buckets $S3_BUCKET_ARTIFACTS, $S3_BUCKET_DATA; app user with policy recsys-app"
