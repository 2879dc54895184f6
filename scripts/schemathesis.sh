#!/usr/bin/env bash
# Make the virtualenv holding schemathesis, pinned by tests/requirements-schemathesis.txt,
# for the control API fuzz test (tests/tests/api_fuzz.rs). Idempotent: pip runs only when
# the venv is missing or holds another version. The test finds `st` at the same path:
#   ${BERTH_TOOLS_DIR:-$HOME/.cache/berth}/schemathesis-VERSION/bin/st
# Uses Debian's python3 (with python3-venv, installed by scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

req=tests/requirements-schemathesis.txt
version=$(sed -n 's/^schemathesis==\([^[:space:]]*\).*/\1/p' "$req")
if [[ -z $version ]]; then
    echo "schemathesis.sh: $req pins no schemathesis==VERSION" >&2
    exit 1
fi
venv=${BERTH_TOOLS_DIR:-$HOME/.cache/berth}/schemathesis-$version
if [[ -x $venv/bin/st ]] && "$venv/bin/st" --version 2>/dev/null | grep -qx "st, version $version"; then
    echo "schemathesis.sh: schemathesis $version present in $venv"
    exit 0
fi
echo "schemathesis.sh: installing schemathesis $version into $venv"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/st" --version
