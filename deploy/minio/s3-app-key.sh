#!/bin/sh
# The platform's MinIO application key: a MinIO user whose only policy is the recordings bucket, so the
# platform never holds MinIO's root credentials (docker-compose.yml, service `s3-init`; docs/security.md).
#
#   cc-s3-app-key           create the bucket, the policy and the user (or update them: it is idempotent, and
#                           re-running it with a new S3_APP_SECRET_KEY rotates the key's secret)
#   cc-s3-app-key policy    print the policy document and nothing else (the tests read it)
#
# Environment: S3_BUCKET, S3_PREFIX (the platform's CC_S3_BUCKET and CC_S3_PREFIX), S3_APP_ACCESS_KEY and
# S3_APP_SECRET_KEY (the key), and, to provision, S3_ENDPOINT with MINIO_ROOT_USER and MINIO_ROOT_PASSWORD.
set -eu

POLICY_NAME=callcenter-recordings

fail() {
	echo "cc-s3-app-key: $*" >&2
	exit 2
}

# The names go into a JSON document and an ARN: only the characters S3 allows in them, nothing to escape.
: "${S3_BUCKET:?set S3_BUCKET}"
S3_PREFIX="${S3_PREFIX-}"
case "$S3_BUCKET" in
	*[!a-z0-9.-]* | ?? | ? | [.-]* | *[.-]) fail "S3_BUCKET is not a valid bucket name: $S3_BUCKET" ;;
esac
[ "${#S3_BUCKET}" -le 63 ] || fail "S3_BUCKET is longer than 63 characters"
case "$S3_PREFIX" in
	*[!A-Za-z0-9/._-]*) fail "S3_PREFIX may hold only letters, digits and / . _ -: $S3_PREFIX" ;;
	/*) fail "S3_PREFIX must not start with /" ;;
esac

# Exactly what the platform's S3 store calls (callcenter/recordings/s3.py; a test holds the two together), on
# its bucket and prefix only: HeadBucket (s3:ListBucket), the bucket's default encryption and the retention
# lifecycle rule it keeps (read and put), and put (with tags) / head / get / delete / re-tag its objects. No
# CreateBucket (this job creates the bucket), no other bucket, no bucket policy. And every admin action denied
# outright: MinIO lets a user make service accounts and change its own secret unless a policy denies it, and a
# leaked key must not be able to mint keys that outlive its rotation, or lock the platform out.
policy() {
	cat <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "RecordingsBucket",
      "Effect": "Allow",
      "Action": [
        "s3:ListBucket",
        "s3:GetEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration"
      ],
      "Resource": ["arn:aws:s3:::${S3_BUCKET}"]
    },
    {
      "Sid": "RecordingObjects",
      "Effect": "Allow",
      "Action": [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:PutObjectTagging"
      ],
      "Resource": ["arn:aws:s3:::${S3_BUCKET}/${S3_PREFIX}*"]
    },
    {
      "Sid": "NoKeysOfItsOwn",
      "Effect": "Deny",
      "Action": ["admin:*"]
    }
  ]
}
JSON
}

if [ "${1-}" = policy ]; then
	policy
	exit 0
fi

: "${S3_ENDPOINT:?set S3_ENDPOINT}" "${MINIO_ROOT_USER:?set MINIO_ROOT_USER}"
: "${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD}"
: "${S3_APP_ACCESS_KEY:?set S3_APP_ACCESS_KEY}" "${S3_APP_SECRET_KEY:?set S3_APP_SECRET_KEY}"
[ "$S3_APP_ACCESS_KEY" != "$MINIO_ROOT_USER" ] || fail "S3_APP_ACCESS_KEY must not be MinIO's root user"
[ "$S3_APP_SECRET_KEY" != "$MINIO_ROOT_PASSWORD" ] || fail "S3_APP_SECRET_KEY must not be MinIO's root password"
[ "${#S3_APP_ACCESS_KEY}" -ge 3 ] && [ "${#S3_APP_ACCESS_KEY}" -le 20 ] \
	|| fail "S3_APP_ACCESS_KEY must be 3 to 20 characters"
[ "${#S3_APP_SECRET_KEY}" -ge 16 ] && [ "${#S3_APP_SECRET_KEY}" -le 40 ] \
	|| fail "S3_APP_SECRET_KEY must be 16 to 40 characters (e.g. openssl rand -hex 20)"

# The root credentials live only in this job's environment and in a private, temporary mc configuration.
MC_CONFIG_DIR="$(mktemp -d)"
export MC_CONFIG_DIR
trap 'rm -rf "$MC_CONFIG_DIR"' EXIT
policy_file="$MC_CONFIG_DIR/policy.json"
policy >"$policy_file"

attempt=0
until mc alias set cc "$S3_ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
	attempt=$((attempt + 1))
	[ "$attempt" -lt 30 ] || fail "MinIO at $S3_ENDPOINT did not answer with the root credentials"
	sleep 2
done

mc mb --ignore-existing "cc/$S3_BUCKET"
mc admin policy create cc "$POLICY_NAME" "$policy_file"
# Creates the user, or gives an existing one its (new) secret: that is how the key is rotated.
mc admin user add cc "$S3_APP_ACCESS_KEY" "$S3_APP_SECRET_KEY"
if ! attached="$(mc admin policy attach cc "$POLICY_NAME" --user "$S3_APP_ACCESS_KEY" 2>&1)"; then
	# MinIO refuses to attach a policy that is attached already: a re-run. Anything else is an error.
	case "$(mc admin user info cc "$S3_APP_ACCESS_KEY" 2>&1)" in
		*"$POLICY_NAME"*) ;;
		*) fail "attaching $POLICY_NAME to $S3_APP_ACCESS_KEY failed: $attached" ;;
	esac
fi
echo "cc-s3-app-key: $S3_APP_ACCESS_KEY may use s3://$S3_BUCKET/$S3_PREFIX only (policy $POLICY_NAME)"
