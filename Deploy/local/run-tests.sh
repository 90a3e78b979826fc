#!/usr/bin/env bash
# Runs the whole test suite against a throwaway PostgreSQL cluster that it starts and stops.
set -euo pipefail
cd "$(dirname "$0")/../.."

swift build
data_dir="$(mktemp -d /tmp/oversight-test-db.XXXXXX)"
chmod 755 "$data_dir"
cleanup() {
    .build/debug/oversight local-db stop --data-dir "$data_dir" >/dev/null 2>&1 || true
    rm -rf "$data_dir"
}
trap cleanup EXIT
OVERSIGHT_TEST_DATABASE_URL="$(.build/debug/oversight local-db start --data-dir "$data_dir" --unsafe-fast)"
export OVERSIGHT_TEST_DATABASE_URL
echo "test database: $OVERSIGHT_TEST_DATABASE_URL" >&2
swift test "$@"
