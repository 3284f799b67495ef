#!/usr/bin/env bash
# Load comparison for the README: airlock's ext_authz against a no-op
# ext_authz server, both over gRPC on loopback, in the same run.
set -euo pipefail
BIN=${1:-bin/airlock}
STREAMS=${STREAMS:-16}
DURATION=${DURATION:-5s}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/airlock.yaml" <<YAML
listen: {authz: 127.0.0.1:19001, extproc: "", sds: "", http: 127.0.0.1:18080}
log: {level: warn}
identity: {dev: true}
policies: {paths: [policies/examples], reload_interval: 0s}
recorder: {enabled: false}
YAML
"$BIN" serve --config "$work/airlock.yaml" 2>"$work/serve.log" & pids+=($!)
"$BIN" bench noop-authz --listen 127.0.0.1:19101 >/dev/null & pids+=($!)
for _ in $(seq 100); do
	curl -fs http://127.0.0.1:18080/livez >/dev/null 2>&1 && break
	sleep 0.1
done
token=$("$BIN" dev-token --server http://127.0.0.1:18080 --sub bench-agent --groups ai-agents)
echo "== ext_authz: allowed read (cached token), $STREAMS streams, airlock vs no-op server"
"$BIN" bench authz --target 127.0.0.1:19001 --baseline 127.0.0.1:19101 --streams "$STREAMS" --duration "$DURATION" --token "$token"
