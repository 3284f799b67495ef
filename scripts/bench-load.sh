#!/usr/bin/env bash
# Load comparison for the README: airlock's ext_authz against a no-op
# ext_authz server, both over gRPC on loopback, in the same run.
#
#   PROFILE=cpu.prof   also writes a CPU profile of the recording server
#                      (airlock serve --cpuprofile) over the whole run
set -euo pipefail
BIN=${1:-bin/airlock}
STREAMS=${STREAMS:-16}
SATURATE=${SATURATE:-256}
DURATION=${DURATION:-5s}
PROFILE=${PROFILE:-}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

waitready() {
	for _ in $(seq 100); do
		curl -fs "http://$1/livez" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "no answer on $1" >&2
	return 1
}

# Recording off.
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
noopid=$!

# Recording on as shipped: local sink, fsync'd spool, ext_proc served
# (recorder.durability: extproc, the default: an allowed Check does not
# wait for the spool; ext_proc's request headers do).
cat > "$work/recorded.yaml" <<YAML
listen: {authz: 127.0.0.1:19021, extproc: 127.0.0.1:19022, sds: "", http: 127.0.0.1:18082}
log: {level: warn}
identity: {dev: true}
policies: {paths: [policies/examples], reload_interval: 0s}
recorder: {enabled: true, sink: "file://$work/sessions", spool: "$work/spool"}
YAML
profile=()
if [ -n "$PROFILE" ]; then profile=(--cpuprofile "$PROFILE"); fi
"$BIN" serve --config "$work/recorded.yaml" "${profile[@]}" 2>"$work/serve3.log" & pids+=($!)
recpid=$!
waitready 127.0.0.1:18080
waitready 127.0.0.1:18082
token=$("$BIN" dev-token --server http://127.0.0.1:18080 --sub bench-agent --groups ai-agents)
rtoken=$("$BIN" dev-token --server http://127.0.0.1:18082 --sub bench-agent --groups ai-agents)

echo "== ext_authz: allowed read (cached token), $STREAMS streams, airlock (recording off) vs no-op server"
"$BIN" bench authz --target 127.0.0.1:19001 --baseline 127.0.0.1:19101 --streams "$STREAMS" --duration "$DURATION" --token "$token"
echo
echo "== ext_authz: airlock recording on (recorder.durability: extproc) vs no-op server, $STREAMS streams"
"$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19101 --streams "$STREAMS" --duration "$DURATION" --token "$rtoken"
echo
echo "== ext_authz: as above, the client decoding every reply whole as Envoy does (--full-decode): the dynamic metadata only airlock sends is then client work charged to airlock"
"$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19101 --streams "$STREAMS" --duration "$DURATION" --token "$rtoken" --full-decode
echo
echo "== ext_authz: recording on (target) vs off (baseline), $STREAMS streams; the dev tokens differ only in issuer key"
"$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19001 --streams "$STREAMS" --duration "$DURATION" --token "$rtoken" --baseline-token "$token"

# Saturation: enough streams to keep the cores busy; the figure is
# capacity, and the CPU each server process spends per Check.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
requests() { echo "$2" | grep "^$1 " | sed 's/.*(\([0-9]*\) requests.*/\1/'; }
percheck() {
	awk -v r="$1" -v p="$2" -v rn="$3" -v pn="$4" -v hz="$(getconf CLK_TCK)" -v a="$5" -v b="$6" \
		'BEGIN { rc = r / hz / rn * 1e6; pc = p / hz / pn * 1e6; printf "server CPU per Check: %s %.1f µs, %s %.1f µs\n", a, rc, b, pc }'
}
# Events and group commits of the recording server: events per sync.
recmetrics() { curl -fs http://127.0.0.1:18082/metrics | awk '/^airlock_recorder_events_total / { e = $2 } /^airlock_recorder_spool_syncs_total / { s = $2 } END { print e + 0, s + 0 }'; }
echo
echo "== ext_authz: recording on vs no-op server, $SATURATE streams (saturated: capacity)"
r0=$(cputicks "$recpid"); n0=$(cputicks "$noopid")
out=$("$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19101 --streams "$SATURATE" --duration "$DURATION" --token "$rtoken")
r1=$(cputicks "$recpid"); n1=$(cputicks "$noopid")
echo "$out"
percheck $((r1 - r0)) $((n1 - n0)) "$(requests 127.0.0.1:19021 "$out")" "$(requests 127.0.0.1:19101 "$out")" "airlock recording on" "no-op"
echo
echo "== ext_authz: recording on vs off, $SATURATE streams (saturated: capacity)"
m0=$(recmetrics)
r0=$(cputicks "$recpid"); p0=$(cputicks "$plainpid")
out=$("$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19001 --streams "$SATURATE" --duration "$DURATION" --token "$rtoken" --baseline-token "$token")
r1=$(cputicks "$recpid"); p1=$(cputicks "$plainpid")
m1=$(recmetrics)
echo "$out"
percheck $((r1 - r0)) $((p1 - p0)) "$(requests 127.0.0.1:19021 "$out")" "$(requests 127.0.0.1:19001 "$out")" "recording on" "off"
echo "$m0 $m1" | awk '{ if ($4 > $2) printf "recorded events per spool sync: %.1f (no Check waits for a sync: they come every 10 ms)\n", ($3 - $1) / ($4 - $2) }'

# One identity (one session, one hash chain) against 16 (16 sessions),
# recording on, same server.
tokens=$(for i in $(seq 16); do "$BIN" dev-token --server http://127.0.0.1:18082 --sub "bench-agent-$i" --groups ai-agents; done | paste -sd, -)
echo
echo "== ext_authz, recording on: $STREAMS streams of one identity (url: one session, one hash chain) vs $STREAMS identities (baseline-url: a session each)"
"$BIN" bench authz --target 127.0.0.1:19021 --baseline 127.0.0.1:19021 --streams "$STREAMS" --duration "$DURATION" --token "$rtoken" --baseline-tokens "$tokens"

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
	waitready 127.0.0.1:18081
	agent=$("$BIN" dev-token --server http://127.0.0.1:18081 --sub bench-agent --groups ai-agents)
	sre=$("$BIN" dev-token --server http://127.0.0.1:18081 --sub bench-sre --groups sre)
	write=https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop
	read=https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1
	# The approval binds every header outside a short allow-list: ask for
	# it with the headers airlock bench sends (accept among them).
	id=$( ("$BIN" check --server 127.0.0.1:19011 --token "$agent" --method POST --url "$write" --header "accept: application/json" --json || true) | sed -n 's/.*"approval_id": "\([a-z2-7]*\)".*/\1/p')
	"$BIN" approvals approve "$id" --server http://127.0.0.1:18081 --token "$sre" --reason bench >/dev/null
	echo
	echo "== ext_authz with Redis approvals: approved-then-retried write (url) vs plain allowed read (baseline-url), $STREAMS streams"
	"$BIN" bench authz --target 127.0.0.1:19011 --baseline 127.0.0.1:19011 --streams "$STREAMS" --duration "$DURATION" --token "$agent" \
		--method POST --url "$write" --baseline-method GET --baseline-url "$read" | tee "$work/approvals.out"
	# A retried request the approval does not admit is a refusal, not the
	# figure this measures.
	if ! grep -q "^127.0.0.1:19011 (url) .* 0 denied" "$work/approvals.out"; then
		echo "the approved request was refused: the approval does not match what airlock bench sends" >&2
		exit 1
	fi
else
	echo "redis-server not installed: skipping the approvals load comparison (make test-deps installs it)"
fi
if [ -n "$PROFILE" ]; then
	kill "$recpid"
	wait "$recpid" 2>/dev/null || true
	echo "CPU profile of the recording server: $PROFILE"
fi
