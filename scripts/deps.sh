#!/usr/bin/env bash
# Install what berth's tests, demo and benchmarks need on Debian 12, as root.
# Idempotent: apt runs only when something is missing.
set -euo pipefail

pkgs=(skopeo docker-registry umoci busybox-static runc crun hyperfine jq apache2-utils iptables iproute2
      tar gzip openssl util-linux procps curl python3 python3-venv)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "deps.sh: missing packages (${missing[*]}); run as root" >&2
        exit 1
    fi
    echo "deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "deps.sh: all packages present"
fi

# schemathesis (pinned, in a venv) for the control API fuzz test.
"$(dirname "$0")/schemathesis.sh"

# skopeo keeps its blob-info cache here; the test helpers mount a private tmpfs over it.
mkdir -p /var/lib/containers/cache

if command -v rustup >/dev/null 2>&1; then
    # wasm32-wasip2 for the plugins; musl for the statically linked monitor (scripts/dist.sh).
    for target in wasm32-wasip2 x86_64-unknown-linux-musl; do
        if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
            rustup target add "$target"
        fi
    done
    for component in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
            rustup component add "$component"
        fi
    done
else
    echo "deps.sh: rustup not found; skipping the wasm32-wasip2 and musl targets" >&2
fi
