#!/usr/bin/env bash
# Install the Autobahn|Testsuite (wstest) into a Python 2.7 virtualenv.
#
# Usage: tests/autobahn/install.sh [VENV_DIR]
#
#   VENV_DIR  where to create the virtualenv (default: .autobahn-venv in the repo root)
#
# autobahntestsuite 25.10.1 runs on Python 2.7 only. The interpreter is taken from
# $AUTOBAHN_PYTHON27 if set, else `python2.7` on PATH, else the newest
# /root/.pyenv/versions/2.7.*/bin/python; each candidate is actually run, so a pyenv
# shim that refuses to work is skipped. virtualenv (<20.22, the last line supporting
# Python 2.7) is bootstrapped into a temporary directory, so the interpreter's own
# site-packages are left untouched.
#
# Idempotent: exits 0 at once when VENV_DIR/bin/wstest already exists. Concurrent runs
# for the same VENV_DIR are serialised with flock(1) when it is available.
#
# Exit status: 0 installed (or already there), 3 no usable Python 2.7 found,
# 1 any other failure. On success the last line on stdout is the wstest path.
set -euo pipefail

AUTOBAHN_VERSION="25.10.1"
VIRTUALENV_SPEC="virtualenv<20.22"
EXIT_NO_PYTHON27=3

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
venv="${1:-$repo_root/.autobahn-venv}"
case "$venv" in
    /*) ;;
    *) venv="$PWD/$venv" ;;
esac
venv="${venv%/}"
wstest="$venv/bin/wstest"

log() { printf 'autobahn install: %s\n' "$*" >&2; }

if [ -x "$wstest" ]; then
    log "already installed: $wstest"
    echo "$wstest"
    exit 0
fi

# Serialise concurrent installs into the same directory (e.g. pytest-xdist workers).
if command -v flock >/dev/null 2>&1; then
    lock_id="$(printf '%s' "$venv" | cksum | cut -d' ' -f1)"
    exec 9>"${TMPDIR:-/tmp}/autobahn-install-$lock_id.lock"
    flock 9
    if [ -x "$wstest" ]; then
        log "installed by a concurrent run: $wstest"
        echo "$wstest"
        exit 0
    fi
fi

is_python27() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' \
        >/dev/null 2>&1
}

find_python27() {
    local candidate
    local -a candidates=()
    if [ -n "${AUTOBAHN_PYTHON27:-}" ]; then
        candidates+=("$AUTOBAHN_PYTHON27")
    fi
    if command -v python2.7 >/dev/null 2>&1; then
        candidates+=("$(command -v python2.7)")
    fi
    # Newest patch release first.
    while IFS= read -r candidate; do
        candidates+=("$candidate")
    done < <(ls -d /root/.pyenv/versions/2.7.*/bin/python 2>/dev/null | sort -rV)
    for candidate in "${candidates[@]}"; do
        if [ -x "$candidate" ] && is_python27 "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! python27="$(find_python27)"; then
    log "ERROR: no usable Python 2.7 interpreter found."
    log "autobahntestsuite $AUTOBAHN_VERSION needs Python 2.7. Looked at \$AUTOBAHN_PYTHON27,"
    log "'python2.7' on PATH and /root/.pyenv/versions/2.7.*/bin/python."
    log "Install one (e.g. 'pyenv install 2.7.18') or set AUTOBAHN_PYTHON27."
    exit "$EXIT_NO_PYTHON27"
fi
log "using Python 2.7 at $python27"

# Refuse to build over a directory that is neither empty nor a virtualenv.
if [ -d "$venv" ] && [ -n "$(ls -A "$venv")" ] && [ ! -e "$venv/bin/python" ]; then
    log "ERROR: $venv exists and is not a virtualenv; remove it or choose another path."
    exit 1
fi

bootstrap="$(mktemp -d "${TMPDIR:-/tmp}/autobahn-virtualenv.XXXXXX")"
trap 'rm -rf "$bootstrap"' EXIT

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
unset PYTHONPATH PYTHONHOME

log "bootstrapping $VIRTUALENV_SPEC"
"$python27" -m pip install -qq --target "$bootstrap" "$VIRTUALENV_SPEC" >&2

log "creating virtualenv at $venv"
PYTHONPATH="$bootstrap" "$python27" -m virtualenv --quiet "$venv" >&2

log "installing autobahntestsuite==$AUTOBAHN_VERSION"
"$venv/bin/python" -m pip install -qq "autobahntestsuite==$AUTOBAHN_VERSION" >&2

if ! "$wstest" --autobahnversion >/dev/null 2>&1; then
    log "ERROR: $wstest was installed but does not run:"
    "$wstest" --autobahnversion >&2 || true
    exit 1
fi
log "installed: $wstest"
echo "$wstest"
