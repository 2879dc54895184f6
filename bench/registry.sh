#!/usr/bin/env bash
# Registry throughput: berthd's registry against docker-registry (CNCF Distribution 2.8),
# same machine, same run, alternating, on loopback over plain HTTP, with skopeo as client.
#
#   bench/registry.sh [--rounds N] [--storage tmpfs|disk] [--only berth|docker-registry]
#                     [--size MB] [--concurrency N] [--ceiling]
#
# Measures, for each registry: push and pull of the --big fixture (~200 MB of
# incompressible gzip layers; each skopeo call with an empty private blob-info cache and a
# fresh repository, so every byte is really sent), then N concurrent pushes of it to N fresh
# repositories. Prints MB/s (10^6 bytes/s of blob data), the ratio berth/docker-registry,
# server CPU seconds and peak RSS (VmHWM).
#
# --ceiling adds a third server, the `registry_ceiling` example: it reads and drops what is
# pushed and serves pulls from the fixture held in memory, doing no other work. What skopeo
# gets from it is the most any server could get through skopeo on this machine, so its
# ratio over docker-registry bounds the ratio berth can reach.
#
# Storage: both registries keep their data, and pulls land, on one private tmpfs by default
# (so the servers are measured, not the disk); --storage disk puts it all in a directory on
# the root file system instead (ext4 here). The fixture itself is read from target/.
# Needs root (tmpfs and private mount namespaces for skopeo). BERTH_BIN_DIR=DIR uses
# existing binaries instead of `cargo build --release`.
set -euo pipefail

rounds=3 storage=tmpfs only= size_mb=200 conc=16 ceiling=
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=$2; shift ;;
        --storage) storage=$2; shift ;;
        --only) only=$2; shift ;;
        --size) size_mb=$2; shift ;;
        --concurrency) conc=$2; shift ;;
        --ceiling) ceiling=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case $storage in tmpfs|disk) ;; *) echo "--storage tmpfs|disk" >&2; exit 2 ;; esac
case $only in ""|berth|docker-registry) ;; *) echo "--only berth|docker-registry" >&2; exit 2 ;; esac

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
[[ $(id -u) -eq 0 ]] || { echo "bench/registry.sh needs root (tmpfs, unshare)" >&2; exit 1; }
for tool in skopeo docker-registry curl jq unshare; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/deps.sh" >&2; exit 1; }
done

targets=()
[[ $only != docker-registry ]] && targets+=(berth)
[[ $only != berth ]] && targets+=(docker-registry)
[[ -n $ceiling ]] && targets+=(ceiling)

# --- binaries and fixture -------------------------------------------------------------
if [[ " ${targets[*]} " == *" berth "* ]]; then
    if [[ -n ${BERTH_BIN_DIR:-} ]]; then
        bindir=$BERTH_BIN_DIR
    else
        echo "# building release binaries (cargo build --release -p berth --bins)"
        cargo build --release -p berth --bins
        bindir=${CARGO_TARGET_DIR:-$repo_root/target}/release
    fi
    [[ -x $bindir/berthd ]] || { echo "no berthd in $bindir" >&2; exit 1; }
fi
if [[ -n $ceiling ]]; then
    echo "# building the ceiling server (cargo build --release -p berth-api --example registry_ceiling)"
    cargo build --release -q -p berth-api --example registry_ceiling
    ceiling_bin=${CARGO_TARGET_DIR:-$repo_root/target}/release/examples/registry_ceiling
fi
fixture=${CARGO_TARGET_DIR:-$repo_root/target}/bench-fixture-$size_mb
if [[ ! -f $fixture/index.json ]]; then
    echo "# building the fixture ($size_mb MB extra) in $fixture"
    rm -rf "$fixture.tmp"
    scripts/make-image.sh "$fixture.tmp" --size "$size_mb"
    mv "$fixture.tmp" "$fixture"
fi
manifest=$(jq -r '.manifests[0].digest' "$fixture/index.json")
blob_bytes=$(jq -r '[.config.size] + [.layers[].size] | add' "$fixture/blobs/sha256/${manifest#sha256:}")

# --- work area ------------------------------------------------------------------------
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ $storage == tmpfs ]]; then umount "$work" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
if [[ $storage == tmpfs ]]; then mount -t tmpfs -o size=12g,mode=0700 berth-bench "$work"; fi
mkdir -p /var/lib/containers/cache

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # ADDR PID NAME LOG
    for _ in $(seq 1 600); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/" || true)
        [[ $code == 200 || $code == 401 ]] && return 0
        kill -0 "$2" 2>/dev/null || { echo "$3 exited; log:" >&2; tail -40 "$4" >&2; exit 1; }
        sleep 0.1
    done
    echo "$3 not ready after 60 s; log:" >&2; tail -40 "$4" >&2; exit 1
}

declare -A addr pid
if [[ " ${targets[*]} " == *" berth "* ]]; then
    mkdir -p "$work/berth/root"
    printf '[registry]\nauth = "none"\nanonymous_pull = true\ntoken_ttl_secs = 300\ngc_grace_secs = 600\n' >"$work/berth/config.toml"
    addr[berth]=127.0.0.1:$(free_port)
    RUST_LOG=${RUST_LOG:-warn} "$bindir/berthd" --root "$work/berth/root" --socket "$work/berth/berthd.sock" \
        --registry-listen "${addr[berth]}" --config "$work/berth/config.toml" >"$work/berth/log" 2>&1 &
    pid[berth]=$!; pids+=("$!")
    wait_ready "${addr[berth]}" "${pid[berth]}" berthd "$work/berth/log"
fi
if [[ " ${targets[*]} " == *" docker-registry "* ]]; then
    mkdir -p "$work/dr/storage"
    addr[docker-registry]=127.0.0.1:$(free_port)
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
  addr: ${addr[docker-registry]}
YAML
    docker-registry serve "$work/dr/config.yml" >"$work/dr/log" 2>&1 &
    pid[docker-registry]=$!; pids+=("$!")
    wait_ready "${addr[docker-registry]}" "${pid[docker-registry]}" docker-registry "$work/dr/log"
fi

if [[ -n $ceiling ]]; then
    addr[ceiling]=127.0.0.1:$(free_port)
    mkdir -p "$work/ceiling"
    "$ceiling_bin" "${addr[ceiling]}" "$fixture" >"$work/ceiling/log" 2>&1 &
    pid[ceiling]=$!; pids+=("$!")
    wait_ready "${addr[ceiling]}" "${pid[ceiling]}" registry_ceiling "$work/ceiling/log"
fi

# --- measuring ------------------------------------------------------------------------
skopeo_quiet() { # skopeo with an empty private blob-info cache
    unshare -m sh -c 'mount -t tmpfs none /var/lib/containers/cache && exec skopeo "$@"' skopeo \
        copy --quiet --src-tls-verify=false --dest-tls-verify=false "$@" 2>"$work/skopeo.err" ||
        { echo "skopeo copy $* failed:" >&2; cat "$work/skopeo.err" >&2; exit 1; }
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
seq_no=0
declare -A push_s pull_s conc_s cpu_push cpu_pull cpu_conc
push_s=() pull_s=() conc_s=()

one_push_pull() { # TARGET
    local t=$1 repo tag=v1 t0 t1 t2 c0 c1 c2
    seq_no=$((seq_no + 1)); repo=bench/r$seq_no-$RANDOM
    c0=$(cpu_ticks "${pid[$t]}"); t0=$EPOCHREALTIME
    skopeo_quiet "oci:$fixture:latest" "docker://${addr[$t]}/$repo:$tag"
    t1=$EPOCHREALTIME; c1=$(cpu_ticks "${pid[$t]}")
    rm -rf "$work/pull"
    skopeo_quiet "docker://${addr[$t]}/$repo:$tag" "oci:$work/pull:$tag"
    t2=$EPOCHREALTIME; c2=$(cpu_ticks "${pid[$t]}")
    got=$(jq -r '.manifests[0].digest' "$work/pull/index.json")
    [[ $got == "$manifest" ]] || { echo "$t: pulled manifest $got, pushed $manifest" >&2; exit 1; }
    rm -rf "$work/pull"
    push_s[$t]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') "
    pull_s[$t]+="$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}') "
    cpu_push[$t]=$(( ${cpu_push[$t]:-0} + c1 - c0 ))
    cpu_pull[$t]=$(( ${cpu_pull[$t]:-0} + c2 - c1 ))
    printf '  %-16s push %7s MB/s   pull %7s MB/s\n' "$t" \
        "$(mbps "$blob_bytes" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")" \
        "$(mbps "$blob_bytes" "$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}')")"
}

concurrent_push() { # TARGET
    local t=$1 t0 t1 c0 c1 i jobs=()
    c0=$(cpu_ticks "${pid[$t]}"); t0=$EPOCHREALTIME
    for i in $(seq 1 "$conc"); do
        unshare -m sh -c 'mount -t tmpfs none /var/lib/containers/cache && exec skopeo "$@"' skopeo \
            copy --quiet --dest-tls-verify=false "oci:$fixture:latest" \
            "docker://${addr[$t]}/bench/concurrent-$i-$RANDOM:v1" 2>"$work/conc-$i.err" &
        jobs+=("$!")
    done
    local failed=0
    for j in "${jobs[@]}"; do wait "$j" || failed=$((failed + 1)); done
    t1=$EPOCHREALTIME; c1=$(cpu_ticks "${pid[$t]}")
    if ((failed)); then echo "$t: $failed of $conc concurrent pushes failed:" >&2; cat "$work"/conc-*.err >&2; exit 1; fi
    conc_s[$t]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
    cpu_conc[$t]=$((c1 - c0))
    printf '  %-16s %d concurrent pushes: %7s MB/s aggregate (%.1f s)\n' "$t" "$conc" \
        "$(mbps $((blob_bytes * conc)) "${conc_s[$t]}")" "${conc_s[$t]}"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "# registry benchmark: $(nproc) cores, storage on $storage, image $((blob_bytes / 1048576)) MiB in 3 gzip layers (incompressible), $rounds rounds"
echo "# targets: ${targets[*]}; client skopeo $(skopeo --version | awk '{print $3}'), private empty blob-info cache per call, fresh repository per push"
for r in $(seq 1 "$rounds"); do
    echo "round $r"
    # Alternate which registry goes first.
    if ((r % 2)); then order=("${targets[@]}"); else order=(); for ((i=${#targets[@]}-1; i>=0; i--)); do order+=("${targets[$i]}"); done; fi
    for t in "${order[@]}"; do one_push_pull "$t"; done
done
echo "concurrent"
for t in "${targets[@]}"; do concurrent_push "$t"; done

hz=$(getconf CLK_TCK)
# Ratio columns: berth and the ceiling, each over docker-registry, when both are measured.
ratios=()
if [[ " ${targets[*]} " == *" docker-registry "* ]]; then
    for t in berth ceiling; do [[ " ${targets[*]} " == *" $t "* ]] && ratios+=("$t"); done
fi
echo
printf '%-28s' "summary (median of rounds)"; for t in "${targets[@]}"; do printf '%18s' "$t"; done
for t in "${ratios[@]}"; do printf '%26s' "$t/docker-registry"; done; echo
row() { # LABEL VALUES... (one per target, in order)
    local label=$1; shift
    local -A v=()
    printf '%-28s' "$label"
    for t in "${targets[@]}"; do v[$t]=$1; printf '%18s' "$1"; shift; done
    for t in "${ratios[@]}"; do
        printf '%26s' "$(awk -v a="${v[$t]}" -v b="${v[docker-registry]}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')"
    done
    echo
}
vals=(); for t in "${targets[@]}"; do vals+=("$(mbps "$blob_bytes" "$(echo "${push_s[$t]}" | median)")"); done; row "push MB/s" "${vals[@]}"
vals=(); for t in "${targets[@]}"; do vals+=("$(mbps "$blob_bytes" "$(echo "${pull_s[$t]}" | median)")"); done; row "pull MB/s" "${vals[@]}"
vals=(); for t in "${targets[@]}"; do vals+=("$(mbps $((blob_bytes * conc)) "${conc_s[$t]}")"); done; row "$conc concurrent push MB/s" "${vals[@]}"
vals=(); for t in "${targets[@]}"; do vals+=("$(awk -v c="${cpu_push[$t]}" -v h="$hz" -v n="$rounds" 'BEGIN{printf "%.2f", c/h/n}')"); done; row "server CPU s per push" "${vals[@]}"
vals=(); for t in "${targets[@]}"; do vals+=("$(awk -v c="${cpu_pull[$t]}" -v h="$hz" -v n="$rounds" 'BEGIN{printf "%.2f", c/h/n}')"); done; row "server CPU s per pull" "${vals[@]}"
vals=(); for t in "${targets[@]}"; do vals+=("$(awk -v c="${cpu_conc[$t]}" -v h="$hz" 'BEGIN{printf "%.2f", c/h}')"); done; row "server CPU s, concurrent" "${vals[@]}"
vals=(); for t in "${targets[@]}"; do vals+=("$(awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/${pid[$t]}/status")"); done; row "peak RSS MiB (VmHWM)" "${vals[@]}"
echo "(ratio > 1 means faster for MB/s rows, and uses more for CPU and RSS rows; the ceiling holds the whole fixture in memory, so its RSS says nothing)"
