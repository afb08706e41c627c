#!/usr/bin/env bash
# The real agent CLIs (Claude Code, Codex) for tests/test_real_clis.py, installed with npm.
#
#   eval "$(scripts/agent_clis.sh)"   # installs both into $CTXBUDGET_CLI_DIR (default
#                                     # /tmp/ctxbudget-clis) unless already there, prints
#                                     # the CTXBUDGET_CLI_DIR export and the versions
#
# The tests run each CLI against a local fake provider (tests/provider_server) with a fresh
# HOME: no account, no network but the npm registry here. Set CTXBUDGET_CLI_VERSIONS to pin
# (e.g. "@anthropic-ai/claude-code@2.1.332 @openai/codex@0.171.0"); the default is @latest,
# so a new release that writes a new record kind shows up in CI.
# Everything but the export line goes to stderr, so `eval` sees only the export.
set -euo pipefail

DIR="${CTXBUDGET_CLI_DIR:-/tmp/ctxbudget-clis}"
PACKAGES="${CTXBUDGET_CLI_VERSIONS:-@anthropic-ai/claude-code@latest @openai/codex@latest}"

log() { echo "agent_clis: $*" >&2; }

if ! command -v npm > /dev/null; then
  if command -v apt-get > /dev/null; then
    log "installing Node.js and npm (apt-get)"
    (apt-get update -q || true) > /dev/null 2>&1
    apt-get install -y -q nodejs npm > /dev/null
  else
    log "npm is missing: install Node.js 18 or newer"
    exit 1
  fi
fi

mkdir -p "$DIR"
if [ ! -x "$DIR/node_modules/.bin/claude" ] || [ ! -x "$DIR/node_modules/.bin/codex" ] \
  || [ -n "${CTXBUDGET_CLI_VERSIONS:-}" ]; then
  log "npm install $PACKAGES (into $DIR)"
  # shellcheck disable=SC2086  # the package list is split on purpose
  (cd "$DIR" && npm install --no-audit --no-fund --silent $PACKAGES >&2)
fi
log "$("$DIR/node_modules/.bin/claude" --version) / $("$DIR/node_modules/.bin/codex" --version 2>/dev/null)"
echo "export CTXBUDGET_CLI_DIR='$DIR'"
