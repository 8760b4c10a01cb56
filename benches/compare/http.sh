#!/usr/bin/env bash
# Over HTTP: the example server (grantor behind axum, as shipped) against a bare axum handler
# (`--bin bare`) that answers fixed JSON, both driven by wrk on this machine's loopback.
#
#   benches/compare/http.sh
#
# Settings (environment): DURATION (wrk -d, default 10s), CONNECTIONS (wrk -c, default 32),
# THREADS (wrk -t, default 1), EXAMPLE_ADDR (default 127.0.0.1:18080), BARE_ADDR (default
# 127.0.0.1:18081). Prints requests/s for POST /oauth/token (client credentials, HTTP Basic) and
# GET /api/users (a bearer token with scope read), and the example's share of the bare figure:
# with the example's default logging (info, to a file here; grantor logs issued tokens at debug,
# so nothing per token) and with RUST_LOG=warn.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
EXAMPLE_ADDR="${EXAMPLE_ADDR:-127.0.0.1:18080}"
BARE_ADDR="${BARE_ADDR:-127.0.0.1:18081}"

for tool in wrk curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is not installed (on Debian: apt-get install -y -qq $tool)" >&2
        exit 1
    fi
done

work="$(mktemp -d)"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT

echo "building the example and the bare server (release)..." >&2
(cd "$root" && cargo build --release --quiet --example axum_server)
(cd "$here" && cargo build --release --quiet --bin bare)
example_bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/axum_server"
bare_bin="${CARGO_TARGET_DIR:-$here/target}/release/bare"

# start NAME ADDR LOG_LEVEL COMMAND: runs COMMAND with ADDR and RUST_LOG set, waits for its
# "listening on" line.
start() {
    local name="$1" addr="$2" level="$3" bin="$4"
    local out="$work/$name.out" log="$work/$name.log"
    if [[ -n "$level" ]]; then
        ADDR="$addr" RUST_LOG="$level" "$bin" >"$out" 2>"$log" &
    else
        (unset RUST_LOG; ADDR="$addr" exec "$bin") >"$out" 2>"$log" &
    fi
    server_pid=$!
    for _ in $(seq 1 600); do
        if grep -q "listening on" "$out" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "error: $name exited:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "error: $name did not start listening on $addr within 60 s" >&2
    exit 1
}

# token ADDR: an access token from POST /oauth/token.
token() {
    curl -sf -u service:service-secret -d grant_type=client_credentials "http://$1/oauth/token" |
        sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

# bench LABEL ARGS...: wrk's requests/s; fails if any answer was not 2xx.
bench() {
    local label="$1"
    shift
    local out="$work/wrk-$label.txt"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" >"$out"
    if grep -q "Non-2xx" "$out"; then
        echo "error: $label: some answers were not 2xx:" >&2
        cat "$out" >&2
        exit 1
    fi
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out"
}

declare -A rps
run_set() {
    local name="$1" addr="$2" level="$3" bin="$4"
    start "$name" "$addr" "$level" "$bin"
    local access
    access="$(token "$addr")"
    if [[ -z "$access" ]]; then
        echo "error: $name gave no token" >&2
        exit 1
    fi
    # The token works, and a wrong one is refused: both servers do the check being measured.
    curl -sf -H "Authorization: Bearer $access" "http://$addr/api/users" >/dev/null
    if curl -sf -H "Authorization: Bearer wrong$access" "http://$addr/api/users" >/dev/null; then
        echo "error: $name accepted a wrong bearer token" >&2
        exit 1
    fi
    echo "wrk $name: POST /oauth/token ($DURATION)..." >&2
    rps["$name/token"]="$(bench "$name-token" -s "$here/wrk/token.lua" "http://$addr/oauth/token")"
    echo "wrk $name: GET /api/users ($DURATION)..." >&2
    rps["$name/users"]="$(bench "$name-users" -H "Authorization: Bearer $access" "http://$addr/api/users")"
    if [[ "$name" == example-info ]]; then
        local lines
        lines="$(grep -c "" "$work/$name.log" || true)"
        echo "the example wrote $lines log lines at its default level" >&2
    fi
    stop_server
}

run_set bare "$BARE_ADDR" "" "$bare_bin"
run_set example-info "$EXAMPLE_ADDR" "" "$example_bin"
run_set example-warn "$EXAMPLE_ADDR" "warn" "$example_bin"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "## Over HTTP: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, loopback, $(nproc) cores"
echo
echo "| endpoint | bare axum (req/s) | example, default log (req/s) | example / bare | example, RUST_LOG=warn (req/s) | example / bare |"
echo "|---|---:|---:|---:|---:|---:|"
for ep in token users; do
    label="POST /oauth/token (client credentials)"
    [[ "$ep" == users ]] && label="GET /api/users (bearer, scope read)"
    b="${rps[bare/$ep]}"
    i="${rps[example-info/$ep]}"
    w="${rps[example-warn/$ep]}"
    echo "| $label | $b | $i | $(ratio "$i" "$b") | $w | $(ratio "$w" "$b") |"
done
