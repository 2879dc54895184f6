#!/usr/bin/env bash
# Pull-and-unpack: berth against skopeo + umoci and against the floor (plain tar), same
# machine, same run, alternating, on the same ~200 MB three-layer gzip image
# (scripts/make-image.sh --size 200: incompressible data, so gzip and sha256 dominate).
#
#   bench/pull.sh [--rounds N] [--size MB]
#
# For each round, each of (order alternating between rounds):
#   berth   `berth pull REF` from docker-registry on loopback to a ready image: all three
#           layers unpacked into overlay snapshots; a fresh berthd on a fresh root each round
#           (started before the clock starts).
#   skopeo+umoci   `skopeo copy docker://REF oci:DIR:TAG` (empty private blob-info cache)
#           then `umoci unpack --image DIR:TAG BUNDLE`; both timed, and in total.
#   tar     the floor: `tar -xzf` of the three layer blobs one after another into one
#           directory (no download, no digest checks, no whiteouts, no snapshots). It is
#           the floor of a single-stream, one-layer-after-another unpack with GNU gzip; a
#           puller that overlaps layers on several cores (or inflates faster) can beat it.
# Prints each time, medians, ratios, berthd CPU seconds per pull and berthd's peak RSS
# (VmHWM, the highest of the rounds).
#
# Everything is on one private tmpfs: docker-registry's storage, berthd's --root (overlayfs
# needs d_type, which tmpfs has), skopeo's and umoci's targets, the tar target and the
# layer blobs tar reads. So the disk (ext4 with online discard here) is not measured.
# Needs root. BERTH_BIN_DIR=DIR uses existing binaries instead of `cargo build --release`.
set -euo pipefail

rounds=3 size_mb=200
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=$2; shift ;;
        --size) size_mb=$2; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
[[ $(id -u) -eq 0 ]] || { echo "bench/pull.sh needs root (tmpfs, unshare, overlay mounts)" >&2; exit 1; }
for tool in skopeo umoci docker-registry curl jq unshare tar gzip python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/deps.sh" >&2; exit 1; }
done

if [[ -n ${BERTH_BIN_DIR:-} ]]; then
    bindir=$BERTH_BIN_DIR
else
    echo "# building release binaries (cargo build --release -p berth --bins)"
    cargo build --release -p berth --bins
    bindir=${CARGO_TARGET_DIR:-$repo_root/target}/release
fi
[[ -x $bindir/berthd && -x $bindir/berth ]] || { echo "no berthd/berth in $bindir" >&2; exit 1; }

fixture=${CARGO_TARGET_DIR:-$repo_root/target}/bench-fixture-$size_mb
if [[ ! -f $fixture/index.json ]]; then
    echo "# building the fixture ($size_mb MB extra) in $fixture"
    rm -rf "$fixture.tmp"
    scripts/make-image.sh "$fixture.tmp" --size "$size_mb"
    mv "$fixture.tmp" "$fixture"
fi
manifest=$(jq -r '.manifests[0].digest' "$fixture/index.json")
manifest_file=$fixture/blobs/sha256/${manifest#sha256:}
mapfile -t layers < <(jq -r '.layers[].digest' "$manifest_file")
blob_bytes=$(jq -r '[.config.size] + [.layers[].size] | add' "$manifest_file")

# --- work area on tmpfs -------------------------------------------------------------------
work=$(mktemp -d /tmp/berth-pull-bench.XXXXXX)
pids=()
berthd_pid=
cleanup() {
    [[ -n $berthd_pid ]] && pids+=("$berthd_pid")
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # Overlay mounts berthd may have left (none expected), then the tmpfs.
    { grep -o " $work/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    umount "$work" 2>/dev/null || true
    rm -rf "$work" || true
}
trap cleanup EXIT
mount -t tmpfs -o size=8g,mode=0700 berth-pull-bench "$work"
mkdir -p /var/lib/containers/cache "$work/layers"
for l in "${layers[@]}"; do cp "$fixture/blobs/sha256/${l#sha256:}" "$work/layers/"; done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # ADDR PID NAME LOG
    for _ in $(seq 1 600); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/" || true)
        [[ $code == 200 || $code == 401 ]] && return 0
        kill -0 "$2" 2>/dev/null || { echo "$3 exited; log:" >&2; tail -40 "$4" >&2; exit 1; }
        sleep 0.1
    done
    echo "$3 not ready after 60 s; log:" >&2; tail -40 "$4" >&2; exit 1
}

# docker-registry serving the image.
mkdir -p "$work/dr/storage"
reg=127.0.0.1:$(free_port)
cat >"$work/dr/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/dr/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $reg
YAML
docker-registry serve "$work/dr/config.yml" >"$work/dr/log" 2>&1 &
pids+=("$!")
wait_http "$reg" "$!" docker-registry "$work/dr/log"
ref=$reg/bench/pull:v1
skopeo_private() { unshare -m sh -c 'mount -t tmpfs none /var/lib/containers/cache && exec skopeo "$@"' skopeo "$@"; }
skopeo_private copy --quiet --dest-tls-verify=false "oci:$fixture:latest" "docker://$ref" 2>"$work/push.err" ||
    { echo "pushing the fixture to docker-registry failed:" >&2; cat "$work/push.err" >&2; exit 1; }

# --- the three contenders -------------------------------------------------------------------
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
hz=$(getconf CLK_TCK)
declare -a t_berth t_skopeo t_umoci t_su t_tar cpu_berth
peak_rss_kib=0
round_no=0

run_berth() {
    local d=$work/berthd-$round_no t0 t1 c0 c1 hwm
    mkdir -p "$d/root"
    printf '[registry]\nauth = "none"\nanonymous_pull = true\ngc_grace_secs = 600\n' >"$d/config.toml"
    local addr=127.0.0.1:$(free_port)
    RUST_LOG=${RUST_LOG:-warn} "$bindir/berthd" --root "$d/root" --socket "$d/berthd.sock" \
        --registry-listen "$addr" --config "$d/config.toml" >"$d/log" 2>&1 &
    berthd_pid=$!
    wait_http "$addr" "$berthd_pid" berthd "$d/log"
    for _ in $(seq 1 100); do [[ -S $d/berthd.sock ]] && break; sleep 0.05; done
    c0=$(awk '{print $14 + $15}' "/proc/$berthd_pid/stat")
    t0=$(now)
    BERTH_HOST=unix://$d/berthd.sock HOME=$d DOCKER_CONFIG=$d "$bindir/berth" pull "$ref" >"$d/pull.out" 2>"$d/pull.err" ||
        { echo "berth pull failed:" >&2; cat "$d/pull.err" >&2; tail -30 "$d/log" >&2; exit 1; }
    t1=$(now)
    c1=$(awk '{print $14 + $15}' "/proc/$berthd_pid/stat")
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$berthd_pid/status")
    ((hwm > peak_rss_kib)) && peak_rss_kib=$hwm
    # Ready means unpacked: three snapshot directories, and inspect names the top chain ID.
    local n chain
    n=$(find "$d/root/snapshots/snapshots" -mindepth 1 -maxdepth 1 -type d | wc -l)
    chain=$(BERTH_HOST=unix://$d/berthd.sock HOME=$d DOCKER_CONFIG=$d "$bindir/berth" image inspect "$ref" |
        jq -r 'if type == "array" then .[0] else . end | .chain_id // empty')
    [[ $n -eq 3 && -n $chain ]] || { echo "berth pull did not leave a ready image ($n snapshots, chain '$chain')" >&2; exit 1; }
    # ... holding all the data (incompressible: unpacked is about as large as the blobs).
    local unpacked
    unpacked=$(du -sb "$d/root/snapshots/snapshots" | cut -f1)
    ((unpacked >= blob_bytes * 95 / 100)) || { echo "berth's snapshots hold only $unpacked bytes of $blob_bytes" >&2; exit 1; }
    kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null || true; berthd_pid=
    rm -rf "$d"
    t_berth+=("$(secs "$t0" "$t1")")
    cpu_berth+=("$(awk -v c="$((c1 - c0))" -v h="$hz" 'BEGIN { printf "%.2f", c / h }')")
}

run_skopeo_umoci() {
    local d=$work/su t0 t1 t2
    rm -rf "$d"; mkdir -p "$d"
    t0=$(now)
    skopeo_private copy --quiet --src-tls-verify=false "docker://$ref" "oci:$d/layout:v1" 2>"$work/su.err" ||
        { echo "skopeo copy failed:" >&2; cat "$work/su.err" >&2; exit 1; }
    t1=$(now)
    umoci unpack --image "$d/layout:v1" "$d/bundle" >/dev/null 2>"$work/su.err" ||
        { echo "umoci unpack failed:" >&2; cat "$work/su.err" >&2; exit 1; }
    t2=$(now)
    [[ -f $d/bundle/rootfs/srv/data/blob3.bin && ! -e $d/bundle/rootfs/tmp/removeme ]] ||
        { echo "umoci unpack produced an unexpected tree" >&2; exit 1; }
    rm -rf "$d"
    t_skopeo+=("$(secs "$t0" "$t1")"); t_umoci+=("$(secs "$t1" "$t2")"); t_su+=("$(secs "$t0" "$t2")")
}

run_tar() {
    local d=$work/tar t0 t1 l
    rm -rf "$d"; mkdir -p "$d"
    t0=$(now)
    for l in "${layers[@]}"; do tar -xzf "$work/layers/${l#sha256:}" -C "$d"; done
    t1=$(now)
    rm -rf "$d"
    t_tar+=("$(secs "$t0" "$t1")")
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

echo "# pull benchmark: $(nproc) cores; image $((blob_bytes / 1048576)) MiB in 3 gzip layers (incompressible), served by docker-registry on loopback"
echo "# all on tmpfs: registry storage, berthd --root, skopeo/umoci and tar targets, the layer blobs tar reads; $rounds rounds, order alternating"
echo "# berth $("$bindir/berth" --version 2>/dev/null | awk '{print $2}') ($bindir), skopeo $(skopeo --version | awk '{print $3}'), $(umoci --version), $(tar --version | head -1)"
for r in $(seq 1 "$rounds"); do
    round_no=$r
    if ((r % 2)); then order=(berth su tar); else order=(tar su berth); fi
    for c in "${order[@]}"; do
        case $c in berth) run_berth ;; su) run_skopeo_umoci ;; tar) run_tar ;; esac
    done
    i=$((r - 1))
    printf 'round %d: berth pull %6ss (berthd CPU %ss)   skopeo copy %6ss + umoci unpack %6ss = %6ss   tar -xzf x3 %6ss\n' \
        "$r" "${t_berth[$i]}" "${cpu_berth[$i]}" "${t_skopeo[$i]}" "${t_umoci[$i]}" "${t_su[$i]}" "${t_tar[$i]}"
done

mb=$(median "${t_berth[@]}"); msu=$(median "${t_su[@]}"); mt=$(median "${t_tar[@]}")
echo
echo "median of $rounds rounds:"
printf '  berth pull (to a ready image)      %7.3f s   %6.1f MB/s\n' "$mb" "$(awk -v b="$blob_bytes" -v s="$mb" 'BEGIN{print b/s/1e6}')"
printf '  skopeo copy + umoci unpack         %7.3f s   %6.1f MB/s   (skopeo %.3f s, umoci %.3f s)\n' "$msu" \
    "$(awk -v b="$blob_bytes" -v s="$msu" 'BEGIN{print b/s/1e6}')" "$(median "${t_skopeo[@]}")" "$(median "${t_umoci[@]}")"
printf '  floor: tar -xzf of the 3 layers    %7.3f s   %6.1f MB/s\n' "$mt" "$(awk -v b="$blob_bytes" -v s="$mt" 'BEGIN{print b/s/1e6}')"
echo "ratios:"
echo "  (skopeo + umoci) / berth     $(ratio "$msu" "$mb")   (> 1: berth is faster)"
echo "  berth / tar floor            $(ratio "$mb" "$mt")   (1.00x would be as fast as plain tar)"
echo "berthd CPU s per pull (median): $(median "${cpu_berth[@]}")"
echo "berthd peak RSS (VmHWM, max of rounds): $(awk -v k="$peak_rss_kib" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
