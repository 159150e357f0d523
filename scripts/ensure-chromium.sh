#!/usr/bin/env bash
# Debian's chromium for report-svc's dashboard test (a real headless browser). Idempotent: does nothing when
# /usr/bin/chromium exists; installs only where that is expected to work unattended (CI=true, or running as root).
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if [[ "${CI:-}" != "true" && "$(id -u)" != "0" ]]; then
    echo "ensure-chromium: /usr/bin/chromium missing; run 'sudo apt-get install -y chromium' (the dashboard test skips without it)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi
$SUDO apt-get install -y --no-install-recommends chromium || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium; }
