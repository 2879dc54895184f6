#!/usr/bin/env bash
# A short tour: start berthd on a temporary root, make a base image from busybox-static with
# `berth import`, push it into berthd's registry, remove it, pull it back (unpacked into
# overlay snapshots), show and mount it; then pull a 3-layer image skopeo copied in; run a
# container; load two Wasm plugins (a policy and a scanner) and see them at work.
# Run as root: `sudo scripts/demo.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$(pwd)

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

bold "Installing dependencies (if missing)"
scripts/deps.sh

bold "Building berth and its Wasm plugins (release)"
cargo build --release --workspace
# The shipped set: berthd and berth, and the statically linked monitor beside them.
bindir=$(scripts/dist.sh)
plugindir=${CARGO_TARGET_DIR:-$repo_root/target}/plugins/wasm32-wasip2/release

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
daemon_pid=
cleanup() {
    if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    umount -l "$work/mnt" 2>/dev/null || true
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

bold "Making a base image from busybox-static with berth import"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in sh ls cat echo id hostname; do ln -s busybox "$work/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
berth import -c 'CMD ["/bin/sh"]' "$work/rootfs.tar.gz" "$registry/demo/busybox:v1"

bold "Pushing it into berthd's own registry, forgetting it, pulling it back"
berth push "$registry/demo/busybox:v1"
pushed=$(skopeo_private inspect --raw --tls-verify=false "docker://$registry/demo/busybox:v1" | sha256sum | cut -d' ' -f1)
berth rmi "$registry/demo/busybox:v1"
berth pull "$registry/demo/busybox:v1"

bold "Showing it"
berth images
berth image history "$registry/demo/busybox:v1"
mkdir -p "$work/mnt"
berth image mount "$registry/demo/busybox:v1" "$work/mnt"
printf '$ ls -l %s/bin\n' "$work/mnt"; ls -l "$work/mnt/bin"
berth image unmount "$work/mnt"
got=$("$bindir/berth" image inspect "$registry/demo/busybox:v1" | jq -r .manifest)
if [[ $got == "sha256:$pushed" ]]; then
    echo "pulled back the manifest that was pushed: $got"
else
    echo "pulled manifest $got differs from the pushed sha256:$pushed" >&2; exit 1
fi

bold "A 3-layer image from another client: skopeo copies it in, berth pulls and mounts it"
run scripts/make-image.sh "$work/image"
skopeo_private copy --quiet --dest-tls-verify=false "oci:$work/image:latest" "docker://$registry/demo/layers:v1"
berth pull "$registry/demo/layers:v1"
berth image mount "$registry/demo/layers:v1" "$work/mnt"
printf '$ ls %s/etc\n' "$work/mnt"; ls "$work/mnt/etc"
berth image unmount "$work/mnt"
berth images

bold "Running a container from it"
berth run --rm "$registry/demo/busybox:v1" sh -c 'echo "hello from $(hostname), pid $$"'

bold "Plugins: a policy that refuses root containers, and a package scanner"
berth plugin install "$plugindir/deny_root.wasm"
berth plugin install --kind scanner "$plugindir/pkg_inventory.wasm"
printf '$ berth run --rm %s id   # refused by deny-root\n' "$registry/demo/busybox:v1"
if "$bindir/berth" run --rm "$registry/demo/busybox:v1" id; then
    echo "deny-root let a root container run" >&2; exit 1
fi
berth run --rm -u 65534 "$registry/demo/busybox:v1" id
berth scan "$registry/demo/busybox:v1"
berth plugin ls

bold "Stopping berthd"
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
daemon_pid=
echo "done"
