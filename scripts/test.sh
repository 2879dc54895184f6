#!/usr/bin/env bash
# Everything CI runs: dependencies, formatting, lints, then every test in the workspace
# (unit, integration and the end-to-end tests in tests/, which start real daemons and need
# root). Run as root: `sudo scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
scripts/deps.sh
step "cargo fmt --all --check"
cargo fmt --all --check
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test --workspace"
cargo test --workspace
# The guest plugins are their own workspace (built for wasm32-wasip2 by
# host/plugin-artifacts above); their logic is unit-tested natively here.
step "plugins/: fmt, clippy (native and wasm32-wasip2), test"
(
    cd plugins
    cargo fmt --all --check
    cargo clippy --all-targets -- -D warnings
    cargo clippy --target wasm32-wasip2 --all-targets -- -D warnings
    cargo test
)
