#!/usr/bin/env bash
# Prometheus's alert rules and configuration, with promtool (Debian's prometheus package, which
# scripts/stack.sh installs and runs): the rules are valid, their unit tests pass (input series ->
# the alerts that must and must not fire: ops/prometheus/tests/), and the configuration the stack
# rendered from ops/prometheus/prometheus.yml (with its target files and the rules it loads) is valid.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v promtool >/dev/null || { echo "promtool is missing: scripts/stack.sh up installs Debian's prometheus package" >&2; exit 1; }
promtool check rules ops/prometheus/rules/*.yml
promtool test rules ops/prometheus/tests/*.yml
config=${BERTH_STATE_DIR:-$HOME/.local/state/berth}/prometheus/prometheus.yml
if [[ -f $config ]]; then
  promtool check config "$config"
else
  echo "no $config: scripts/stack.sh up renders it" >&2
  exit 1
fi
