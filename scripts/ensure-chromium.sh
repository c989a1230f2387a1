#!/usr/bin/env bash
# Make sure a headless Chromium and its driver are installed (idempotent): the status page's
# browser test drives Debian's chromium through chromium-driver (Selenium never downloads one).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "ensure-chromium: chromium and chromedriver present"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "ensure-chromium: installing chromium and chromium-driver"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
