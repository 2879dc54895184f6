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
# The monitor ships as a static musl build (scripts/dist.sh); the suite above ran the
# host's glibc build. Run the container lifecycle tests again with the shipped one.
step "containers with the shipped berth-shim (shim profile, x86_64-unknown-linux-musl)"
cargo build --profile shim --target x86_64-unknown-linux-musl -p berth-shim
target=${CARGO_TARGET_DIR:-$(pwd)/target}
shipped=$target/shipped-shim
mkdir -p "$shipped"
cp "$target/debug/berthd" "$target/debug/berth" "$shipped/"
cp "$target/x86_64-unknown-linux-musl/shim/berth-shim" "$shipped/"
BERTH_BIN_DIR=$shipped cargo test -p berth-e2e --test containers_run --test containers_restart \
    --test containers_exec --test containers_logs
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
