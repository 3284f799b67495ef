#!/usr/bin/env bash
# Load comparison for the README: airlock's ext_authz against a no-op
# ext_authz server, both over gRPC on loopback, in the same run.
set -euo pipefail
BIN=${1:-bin/airlock}
STREAMS=${STREAMS:-16}
SATURATE=${SATURATE:-256}
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
plainpid=$!
"$BIN" bench noop-authz --listen 127.0.0.1:19101 >/dev/null & pids+=($!)
for _ in $(seq 100); do
	curl -fs http://127.0.0.1:18080/livez >/dev/null 2>&1 && break
	sleep 0.1
done
token=$("$BIN" dev-token --server http://127.0.0.1:18080 --sub bench-agent --groups ai-agents)
echo "== ext_authz: allowed read (cached token), $STREAMS streams, airlock vs no-op server"
"$BIN" bench authz --target 127.0.0.1:19001 --baseline 127.0.0.1:19101 --streams "$STREAMS" --duration "$DURATION" --token "$token"

# Recording: the same server with the session recorder on (local sink,
# fsync'd spool) against recording off, same run.
cat > "$work/recorded.yaml" <<YAML
listen: {authz: 127.0.0.1:19021, extproc: "", sds: "", http: 127.0.0.1:18082}
log: {level: warn}
identity: {dev: true}
policies: {paths: [policies/examples], reload_interval: 0s}
recorder: {enabled: true, sink: "file://$work/sessions", spool: "$work/spool"}
YAML
"$BIN" serve --config "$work/recorded.yaml" 2>"$work/serve3.log" & pids+=($!)
recpid=$!
for _ in $(seq 100); do
	curl -fs http://127.0.0.1:18082/livez >/dev/null 2>&1 && break
	sleep 0.1
done
rtoken=$("$BIN" dev-token --server http://127.0.0.1:18082 --sub bench-agent --groups ai-agents)
echo
echo "== ext_authz: recording on (target) vs off (baseline), $STREAMS streams; the dev tokens differ only in issuer key"
"$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19001 --streams "$STREAMS" --duration "$DURATION" --token "$rtoken" --baseline-token "$token"
# Each recorded decision waits for its fdatasync: with few streams that wait
# is the figure; with enough streams to keep the cores busy the waits
# overlap and the cost is the CPU recording takes (throughput capacity).
echo
echo "== ext_authz: recording on vs off, $SATURATE streams (saturated: capacity)"
# CPU ticks (user + system) each server process used, for the CPU per
# Check below: capacity without the load generator's share of the cores.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Events and group commits of the recording server: events per sync.
recmetrics() { curl -fs http://127.0.0.1:18082/metrics | awk '/^airlock_recorder_events_total / { e = $2 } /^airlock_recorder_spool_syncs_total / { s = $2 } END { print e + 0, s + 0 }'; }
m0=$(recmetrics)
r0=$(cputicks "$recpid"); p0=$(cputicks "$plainpid")
out=$("$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19001 --streams "$SATURATE" --duration "$DURATION" --token "$rtoken" --baseline-token "$token")
r1=$(cputicks "$recpid"); p1=$(cputicks "$plainpid")
echo "$out"
requests() { echo "$out" | grep "^$1 " | sed 's/.*(\([0-9]*\) requests.*/\1/'; }
awk -v r=$((r1 - r0)) -v p=$((p1 - p0)) -v rn="$(requests 127.0.0.1:19021)" -v pn="$(requests 127.0.0.1:19001)" -v hz="$(getconf CLK_TCK)" \
	'BEGIN { rc = r / hz / rn * 1e6; pc = p / hz / pn * 1e6; printf "server CPU per Check: recording on %.1f µs, off %.1f µs: %.2fx capacity\n", rc, pc, pc / rc }'
m1=$(recmetrics)
echo "$m0 $m1" | awk '{ if ($4 > $2) printf "recorded events per spool sync: %.1f\n", ($3 - $1) / ($4 - $2) }'

# Approvals: an approved request (grant: window, so every retry claims it
# from Redis) against a plain allowed read, same server, same run.
if command -v redis-server >/dev/null 2>&1; then
	redis-server --port 16399 --save '' --appendonly no --daemonize no >/dev/null 2>&1 & pids+=($!)
	mkdir -p "$work/policies"
	cat > "$work/policies/bench.yaml" <<'YAML'
name: bench-approvals
default: deny
rules:
  - name: prod-writes
    when: '!gcp.readonly && gcp.project == "acme-prod"'
    action: approve
    approvers: [group:sre]
    grant: window
    ttl: 1h
  - name: reads
    when: gcp.readonly
    action: allow
YAML
	cat > "$work/approvals.yaml" <<YAML
listen: {authz: 127.0.0.1:19011, extproc: "", sds: "", http: 127.0.0.1:18081}
log: {level: warn}
identity: {dev: true}
policies: {paths: [$work/policies], reload_interval: 0s}
approvals: {store: "redis://127.0.0.1:16399/0"}
recorder: {enabled: false}
YAML
	"$BIN" serve --config "$work/approvals.yaml" 2>"$work/serve2.log" & pids+=($!)
	for _ in $(seq 100); do
		curl -fs http://127.0.0.1:18081/livez >/dev/null 2>&1 && break
		sleep 0.1
	done
	agent=$("$BIN" dev-token --server http://127.0.0.1:18081 --sub bench-agent --groups ai-agents)
	sre=$("$BIN" dev-token --server http://127.0.0.1:18081 --sub bench-sre --groups sre)
	write=https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop
	read=https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1
	id=$( ("$BIN" check --server 127.0.0.1:19011 --token "$agent" --method POST --url "$write" --json || true) | sed -n 's/.*"approval_id": "\([a-z2-7]*\)".*/\1/p')
	"$BIN" approvals approve "$id" --server http://127.0.0.1:18081 --token "$sre" --reason bench >/dev/null
	echo
	echo "== ext_authz with Redis approvals: approved-then-retried write (url) vs plain allowed read (baseline-url), $STREAMS streams"
	"$BIN" bench authz --target 127.0.0.1:19011 --baseline 127.0.0.1:19011 --streams "$STREAMS" --duration "$DURATION" --token "$agent" \
		--method POST --url "$write" --baseline-method GET --baseline-url "$read"
else
	echo "redis-server not installed: skipping the approvals load comparison (make test-deps installs it)"
fi
