#!/usr/bin/env bash
# A short tour: start berthd on a temporary root, push an image into its registry with
# skopeo, pull it with berth, push it back under a new tag, list images, inspect the result
# with skopeo, stop the daemon. Run as root: `sudo scripts/demo.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$(pwd)

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

bold "Installing dependencies (if missing)"
scripts/deps.sh

bold "Building berth (release)"
cargo build --release
bindir=${CARGO_TARGET_DIR:-$repo_root/target}/release

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
daemon_pid=
cleanup() {
    if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
registry=127.0.0.1:$port
mkdir -p "$work/root" "$work/docker-config"
cat >"$work/config.toml" <<TOML
[registry]
auth = "none"
anonymous_pull = true
token_ttl_secs = 300
gc_grace_secs = 600
TOML

bold "Starting berthd (root $work/root, registry on http://$registry)"
printf '$ berthd --root %s --socket %s --registry-listen %s --config %s\n' \
    "$work/root" "$work/berthd.sock" "$registry" "$work/config.toml"
"$bindir/berthd" --root "$work/root" --socket "$work/berthd.sock" \
    --registry-listen "$registry" --config "$work/config.toml" >"$work/berthd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$registry/v2/" || true)
    [[ -S $work/berthd.sock && ($code == 200 || $code == 401) ]] && break
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        echo "berthd exited; its log:" >&2; cat "$work/berthd.log" >&2; exit 1
    fi
    sleep 0.1
done
echo "berthd is up (pid $daemon_pid)"

export BERTH_HOST=unix://$work/berthd.sock DOCKER_CONFIG=$work/docker-config
berth() { printf '$ berth %s\n' "$*"; "$bindir/berth" "$@"; }
skopeo_private() { # skopeo with an empty private blob-info cache
    mkdir -p /var/lib/containers/cache
    unshare -m sh -c 'mount -t tmpfs none /var/lib/containers/cache && exec skopeo "$@"' skopeo "$@"
}

bold "Building a 3-layer busybox image (OCI layout)"
run scripts/make-image.sh "$work/image"

bold "Putting it into berth's registry with skopeo"
printf '$ skopeo copy oci:%s:latest docker://%s/demo/busybox:v1\n' "$work/image" "$registry"
skopeo_private copy --quiet --dest-tls-verify=false "oci:$work/image:latest" "docker://$registry/demo/busybox:v1"

bold "Pulling it with berth, tagging and pushing it under a new tag"
berth pull "$registry/demo/busybox:v1"
berth tag "$registry/demo/busybox:v1" "$registry/demo/busybox:v2"
berth push "$registry/demo/busybox:v2"

bold "Images known to berth"
berth images

bold "Inspecting the pushed tag with skopeo"
printf '$ skopeo inspect docker://%s/demo/busybox:v2\n' "$registry"
skopeo_private inspect --tls-verify=false "docker://$registry/demo/busybox:v2" |
    jq '{Digest, Architecture, Os, Layers}'
src=$(jq -r '.manifests[0].digest' "$work/image/index.json")
got=$(skopeo_private inspect --raw --tls-verify=false "docker://$registry/demo/busybox:v2" | sha256sum | cut -d' ' -f1)
if [[ sha256:$got == "$src" ]]; then
    echo "v2 has the same manifest digest as the source image: $src"
else
    echo "v2 manifest sha256:$got differs from the source $src" >&2; exit 1
fi

bold "Stopping berthd"
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
daemon_pid=
echo "done"
