#!/usr/bin/env bash
# npm run test:compose: the compose deployment boots (test/compose/boot.test.ts). It builds
# Berth's image on a Debian base made with debootstrap, on a Docker daemon of its own, and runs
# the compose file's Berth services against local stand-ins of the infrastructure images (none
# can be pulled here); it needs only the stack's registry and the Go tools the stack builds
# (the real Temporal server when `stack.sh build` or `up:cluster` built it). Either mode of the
# stack may be running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
registry_up() { curl -fs -o /dev/null http://127.0.0.1:5000/v2/; }
registry_up || bash scripts/stack.sh up
node --import tsx --test --test-concurrency=1 --test-reporter=spec test/compose/*.test.ts
