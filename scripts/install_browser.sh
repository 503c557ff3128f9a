#!/bin/sh
# Debian's chromium and its matching chromedriver, for tests/test_report_browser.py (report.html in the MLflow
# UI). Only when they are not on PATH yet: apt-get needs root (or sudo) and minutes; a rerun needs neither.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install_browser: needs root or sudo for apt-get" >&2; exit 1; }
    SUDO="sudo"
fi
# env: sudo drops the caller's environment, and a debconf prompt would hang a non-interactive `make test`
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
