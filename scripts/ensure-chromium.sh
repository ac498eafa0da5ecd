#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright; Playwright must never download a browser.
set -euo pipefail
CHROMIUM=${RNAGAN_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing: installing Debian's chromium package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "error: $CHROMIUM is missing. Install Debian's 'chromium' package (as root: apt-get install chromium)" >&2
  echo "       or point RNAGAN_CHROMIUM at a Chromium binary." >&2
  exit 1
fi
