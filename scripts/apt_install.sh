#!/bin/sh
# apt_install.sh PROGRAM... -- PACKAGE...: Debian's PACKAGEs, only when one of the PROGRAMs is missing (a name
# on PATH, or a path pattern such as /usr/lib/postgresql/*/bin/initdb). apt-get needs root (or sudo) and
# minutes; a rerun needs neither. `make test` uses it for the browser and PostgreSQL tests.
set -eu
missing=0
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
        /*) set +f; found=0; for p in $1; do [ -x "$p" ] && found=1; done; [ "$found" = 1 ] || missing=1 ;;
        *) command -v "$1" >/dev/null 2>&1 || missing=1 ;;
    esac
    shift
done
[ "$#" -gt 0 ] && shift  # the --
[ "$missing" = 1 ] || exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "apt_install: needs root or sudo for apt-get: $*" >&2; exit 1; }
    SUDO="sudo"
fi
# env: sudo drops the caller's environment, and a debconf prompt would hang a non-interactive `make test`
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
