package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/redistest"
	"github.com/airlockhq/airlock/test/standin"
)

const approvalPolicy = `name: prod
default: deny
rules:
  - name: prod-writes-need-sre
    when: '!gcp.readonly && (gcp.project == "acme-prod" || gcp.resource.startsWith("projects/_/buckets/acme-data/"))'
    action: approve
    message: Changes to production need an SRE.
    approvers: [group:sre]
    grant: once
    ttl: 10m
  - name: reads
    when: gcp.readonly
    action: allow
`

// startReplicas starts two airlock processes sharing one real Redis.
func startReplicas(t *testing.T, iss *identitytest.Issuer, hold string) (*Airlock, *Airlock) {
	t.Helper()
	r := redistest.Start(t)
	start := func() *Airlock {
		return startAirlock(t, func(p Ports, dir string) string {
			pdir := writePolicy(t, dir, "policy.yaml", approvalPolicy)
			return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
approvals: {store: %q, hold: %s, public_url: "http://%s"}
recorder: {enabled: false}
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, r.URL(), hold, p.HTTP)
		})
	}
	return start(), start()
}

// api calls the approvals API with a bearer token.
func api(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestApprovalAcrossReplicas(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a, b := startReplicas(t, iss, "0s")
	agent := iss.Mint(map[string]any{"sub": "agent-1", "email": "agent-1@example.com", "groups": []string{"ai-agents"}})
	sre := iss.Mint(map[string]any{"sub": "sre-1", "email": "sre-1@example.com", "groups": []string{"sre"}})
	outsider := iss.Mint(map[string]any{"sub": "dev-9", "email": "dev-9@example.com", "groups": []string{"dev"}})
	ca := checker{t, a.Authz(t), envoyConfig}
	cb := checker{t, b.Authz(t), envoyConfig}
	stop := "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop"

	res := ca.do("POST", stop, agent, nil, "")
	if res.Allowed || res.Status != 403 {
		t.Fatalf("a production write was not held: allowed=%v %d %s", res.Allowed, res.Status, res.Body)
	}
	g := parseRefusal(t, res.Body)
	md := g.Error.Details[0].Metadata
	id := md["approval_id"]
	if g.Error.Details[0].Reason != "APPROVAL_REQUIRED" || id == "" || !strings.Contains(md["approve_url"], id) || md["expires_at"] == "" {
		t.Fatalf("refusal = %+v", g.Error)
	}
	if !strings.Contains(g.Error.Message, "retry the identical request") || !strings.Contains(g.Error.Message, id) {
		t.Fatalf("the agent is not told what to do: %q", g.Error.Message)
	}

	// The same request on the other replica is the same approval.
	res = cb.do("POST", stop, agent, nil, "")
	if got := parseRefusal(t, res.Body).Error.Details[0].Metadata["approval_id"]; got != id {
		t.Fatalf("replica B opened a second approval %q for %q", got, id)
	}
	// A different body is a different approval.
	res = cb.do("POST", stop, agent, nil, `{"discardLocalSsd":true}`)
	if got := parseRefusal(t, res.Body).Error.Details[0].Metadata["approval_id"]; got == id || got == "" {
		t.Fatalf("a different body shares approval %q", got)
	}

	base := "http://" + b.HTTPAddr + "/v1/approvals/"
	if code, body := api(t, "GET", "http://"+b.HTTPAddr+"/v1/approvals?state=pending", sre, nil); code != 200 || !strings.Contains(fmt.Sprint(body["approvals"]), id) {
		t.Fatalf("pending list on B: %d %v", code, body)
	}
	if code, body := api(t, "GET", base+id, sre, nil); code != 200 || body["operation"] != "compute.instances.stop" || body["state"] != "pending" {
		t.Fatalf("show on B: %d %v", code, body)
	}
	if code, _ := api(t, "POST", base+id+":approve", agent, map[string]string{"reason": "I approve myself"}); code != 403 {
		t.Fatalf("self-approval answered %d", code)
	}
	if code, _ := api(t, "POST", base+id+":approve", outsider, map[string]string{"reason": "sure"}); code != 403 {
		t.Fatalf("a non-approver's vote answered %d", code)
	}
	if code, _ := api(t, "POST", base+"not-an-id:approve", sre, map[string]string{"reason": "x"}); code != 400 {
		t.Fatalf("a malformed id answered %d", code)
	}
	if code, _ := api(t, "POST", base+strings.Repeat("a", 26)+":approve", sre, map[string]string{"reason": "x"}); code != 404 {
		t.Fatalf("an unknown id answered %d", code)
	}

	// The approver uses the CLI against replica B.
	code, out, stderr := runCLI(t, []string{"AIRLOCK_TOKEN=" + sre}, "approvals", "approve", id, "--server", "http://"+b.HTTPAddr, "--reason", "maintenance window")
	if code != 0 {
		t.Fatalf("airlock approvals approve: %d\n%s%s", code, out, stderr)
	}
	if code, _ := api(t, "POST", base+id+":approve", sre, map[string]string{"reason": "again"}); code != 409 {
		t.Fatalf("a vote on a decided approval answered %d", code)
	}

	// The retry passes on A exactly once.
	if res := ca.do("POST", stop, agent, nil, ""); !res.Allowed {
		t.Fatalf("the approved retry was refused: %d %s", res.Status, res.Body)
	}
	res = cb.do("POST", stop, agent, nil, "")
	if res.Allowed {
		t.Fatal("a once grant was spent twice")
	}
	if r := parseRefusal(t, res.Body).Error.Details[0]; r.Reason != "APPROVAL_REQUIRED" || r.Metadata["approval_id"] == id {
		t.Fatalf("after the grant was spent: %s %s", r.Reason, r.Metadata["approval_id"])
	}

	// Approvers judge a masked excerpt of the body, never the secret in it.
	add := "https://secretmanager.googleapis.com/v1/projects/acme-prod/secrets/db:addVersion"
	body := fmt.Sprintf(`{"payload":{"data":%q}}`, base64.StdEncoding.EncodeToString([]byte(secretPEM)))
	res = ca.do("POST", add, agent, map[string]string{"Content-Type": "application/json"}, body)
	id3 := parseRefusal(t, res.Body).Error.Details[0].Metadata["approval_id"]
	code, shown := api(t, "GET", base+id3, sre, nil)
	excerpt, _ := shown["body_excerpt"].(string)
	// A masked base64 member stays base64: the mask, encoded.
	maskedB64 := base64.StdEncoding.EncodeToString([]byte("[MASKED:private_key]"))
	if code != 200 || excerpt == "" || strings.Contains(excerpt, "LS0tLS1CRUdJTi") || !strings.Contains(excerpt, "MASKED") && !strings.Contains(excerpt, maskedB64) {
		t.Fatalf("approvers see the body excerpt %q (%d)", excerpt, code)
	}

	// A denial reaches the agent with the approver's reason.
	del := "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-2/reset"
	res = ca.do("POST", del, agent, nil, "")
	id2 := parseRefusal(t, res.Body).Error.Details[0].Metadata["approval_id"]
	if code, _ := api(t, "POST", base+id2+":deny", sre, map[string]string{"reason": "not during the freeze"}); code != 200 {
		t.Fatalf("deny answered %d", code)
	}
	res = ca.do("POST", del, agent, nil, "")
	g = parseRefusal(t, res.Body)
	if res.Allowed || g.Error.Details[0].Reason != "APPROVAL_DENIED" || !strings.Contains(g.Error.Message, "not during the freeze") {
		t.Fatalf("after a denial: %s: %s", g.Error.Details[0].Reason, g.Error.Message)
	}
}

func TestApprovalHoldReleasedByOtherReplica(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a, b := startReplicas(t, iss, "20s")
	agent := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	sre := iss.Mint(map[string]any{"sub": "sre-1", "email": "sre-1@example.com", "groups": []string{"sre"}})
	hold := envoyConfig
	hold.Timeout = 30 * time.Second
	ca := checker{t, a.Authz(t), hold}

	var (
		wg      sync.WaitGroup
		allowed bool
		took    time.Duration
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		res := ca.do("POST", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/start", agent, nil, "")
		allowed, took = res.Allowed, time.Since(start)
	}()
	var id string
	waitFor(t, 15*time.Second, "the held request to appear on replica B", func() bool {
		_, body := api(t, "GET", "http://"+b.HTTPAddr+"/v1/approvals?state=pending", sre, nil)
		list, _ := body["approvals"].([]any)
		if len(list) == 1 {
			id, _ = list[0].(map[string]any)["id"].(string)
		}
		return id != ""
	})
	if code, body := api(t, "POST", "http://"+b.HTTPAddr+"/v1/approvals/"+id+":approve", sre, map[string]string{"reason": "go"}); code != 200 {
		t.Fatalf("approve: %d %v", code, body)
	}
	wg.Wait()
	if !allowed {
		t.Fatal("the held Check was not released by the approval")
	}
	if took > 15*time.Second {
		t.Fatalf("the held Check waited %s: it was not woken by the approval", took)
	}
}

func TestApprovalStoreDownFailsClosedOnlyForApprovals(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	r := redistest.Start(t)
	a := startAirlock(t, func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", approvalPolicy)
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
approvals: {store: %q}
recorder: {enabled: false}
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, r.URL())
	})
	agent := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	c := checker{t, a.Authz(t), envoyConfig}
	write := "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop"
	read := "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1"

	r.Kill()
	res := c.do("POST", write, agent, nil, "")
	if res.Allowed || res.Status != 503 || parseRefusal(t, res.Body).Error.Details[0].Reason != "UNAVAILABLE" {
		t.Fatalf("approval with Redis down: allowed=%v %d %s", res.Allowed, res.Status, res.Body)
	}
	if res := c.do("GET", read, agent, nil, ""); !res.Allowed {
		t.Fatalf("an allow rule was affected by Redis being down: %d %s", res.Status, res.Body)
	}
	if code, body := a.Get(t, "/healthz"); code != 200 || !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, "redis (approvals.store)") {
		t.Fatalf("/healthz with Redis down: %d %s", code, body)
	}
	r.Restart()
	waitFor(t, 15*time.Second, "approvals to recover without a restart", func() bool {
		res := c.do("POST", write, agent, nil, "")
		return !res.Allowed && res.Status == 403
	})
}

// TestApprovalGrantBindsTheRequest: a grant for an XML API upload admits
// neither a copy (x-goog-copy-source) nor the upload made public
// (x-goog-acl), and a once grant is spent by one request even when the
// agent repeats its x-request-id, on either replica.
func TestApprovalGrantBindsTheRequest(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a, b := startReplicas(t, iss, "0s")
	agent := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	sre := iss.Mint(map[string]any{"sub": "sre-1", "email": "sre-1@example.com", "groups": []string{"sre"}})
	ca := checker{t, a.Authz(t), envoyConfig}
	cb := checker{t, b.Authz(t), envoyConfig}
	const obj = "https://storage.googleapis.com/acme-data/reports/q3.csv"
	const body = "region,total\nemea,42\n"
	upload := func(extra ...string) map[string]string {
		h := map[string]string{"Content-Type": "text/csv", "X-Goog-Project-Id": "acme-prod", "X-Request-Id": "agent-chosen-1"}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	approvalOf := func(res *standin.AuthzResult) string {
		t.Helper()
		if res.Allowed {
			t.Fatal("allowed, want APPROVAL_REQUIRED")
		}
		d := parseRefusal(t, res.Body).Error.Details[0]
		if d.Reason != "APPROVAL_REQUIRED" || d.Metadata["approval_id"] == "" {
			t.Fatalf("refusal %s %v, want APPROVAL_REQUIRED", d.Reason, d.Metadata)
		}
		return d.Metadata["approval_id"]
	}
	id := approvalOf(ca.do("PUT", obj, agent, upload(), body))
	if code, out := api(t, "POST", "http://"+b.HTTPAddr+"/v1/approvals/"+id+":approve", sre, map[string]string{"reason": "quarterly report"}); code != 200 {
		t.Fatalf("approve: %d %v", code, out)
	}
	for name, h := range map[string]map[string]string{
		"copy from another object": upload("X-Goog-Copy-Source", "/acme-secrets/service-account.json"),
		"made public":              upload("X-Goog-Acl", "public-read"),
	} {
		if got := approvalOf(cb.do("PUT", obj, agent, h, body)); got == id {
			t.Fatalf("%s: the upload's grant admitted it", name)
		}
	}
	if res := ca.do("PUT", obj, agent, upload(), body); !res.Allowed {
		t.Fatalf("the approved upload was refused: %d %s", res.Status, res.Body)
	}
	for _, c := range []checker{ca, cb, ca} {
		if got := approvalOf(c.do("PUT", obj, agent, upload(), body)); got == id {
			t.Fatal("the once grant was spent again by repeating the x-request-id")
		}
	}
}
