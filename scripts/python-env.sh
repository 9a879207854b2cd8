#!/usr/bin/env bash
# Creates the Python virtualenv of the interop tests (.venv at the top of the
# repository) with the pinned oslo.messaging 18.3.1 from PyPI, unless it is
# already there and up to date. Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=tests/python/requirements.txt
stamp="$venv/.requirements"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: oslo.messaging 18.3.1 needs Python >= 3.11; set PYTHON to such an interpreter" >&2
    exit 1
fi
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$stamp"; then
    echo "creating $venv with $(grep -i '^oslo.messaging' "$requirements")" >&2
    rm -rf "$venv"
    # Debian keeps `venv`'s pip bootstrap in a package of its own.
    if ! "$python" -c 'import ensurepip' 2>/dev/null; then
        if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
            echo "installing python3-venv with apt-get" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null 2>&1 ||
                { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null; }
        else
            echo "error: $python cannot make a virtualenv (Debian/Ubuntu: sudo apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
echo "$PWD/$venv/bin/python"
