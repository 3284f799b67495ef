package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpnetwork "github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/test/standin"
)

const stopURL = "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop"

type heldResult struct {
	res *standin.AuthzResult
	err error
	at  time.Time
}

// holdCheck sends the agent's request in the background; Check holds it
// until a decision or approvals.hold.
func holdCheck(a *Airlock, t *testing.T, token, url, body string) <-chan heldResult {
	cfg := envoyConfig
	cfg.Timeout = 90 * time.Second
	client := a.Authz(t)
	done := make(chan heldResult, 1)
	go func() {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			done <- heldResult{err: err}
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		res, err := standin.Check(ctx, client, req, []byte(body), cfg)
		done <- heldResult{res, err, time.Now()}
	}()
	return done
}

// TestConsoleApprovals: an approver signed in to the console sees the
// agent's held request appear by itself, confirms an approval (from the
// keyboard too), and the held request goes through at once; the human
// behind the agent, arriving by a deep link through sign-in, sees it as
// waiting for others with no vote buttons; a vote forged from another
// origin with the approver's cookie is refused.
func TestConsoleApprovals(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startConsole(t, iss, "60s")
	base := "http://" + a.HTTPAddr
	b := newBrowser(t)

	sre := b.person("sre-1")
	sre.signIn(base, "/", "sre-1", "pw-sre-1")
	sre.run("empty queue", chromedp.WaitVisible(chromedp.ID("queue-empty")))
	if who := sre.text("#who"); !strings.Contains(who, "sre-1@example.com") || !strings.Contains(who, "sre") {
		t.Errorf("the page does not say who is signed in and their groups: %q", who)
	}
	sre.checkLabels("queue")

	held := holdCheck(a, t, agentToken(iss), stopURL, `{"discardLocalSsd":false}`)
	deadline := time.Now().Add(30 * time.Second)
	for !sre.exists("#queue li.card") {
		select {
		case h := <-held:
			t.Fatalf("the agent's request was answered instead of held: %+v %v", h.res, h.err)
		default:
		}
		if time.Now().After(deadline) {
			sre.fail("the held request appears without a reload", errors.New("no card after 30s"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	id := eval[string](sre, "read the approval id", `document.querySelector('#queue li.card').dataset.id`)
	card := sre.text("#queue li.card")
	for _, want := range []string{"Stop a Compute Engine instance", "claude-agent", "alice@example.com", "Changes to production need an SRE.", "0 of 1 approval"} {
		if !strings.Contains(card, want) {
			t.Errorf("the card does not say %q:\n%s", want, card)
		}
	}
	sre.shot("queue-with-held-request")

	// The human behind the agent follows a deep link through sign-in.
	alice := b.person("alice")
	alice.signIn(base, "/approvals/"+id, "alice", "pw-alice")
	alice.run("requester view", chromedp.WaitVisible(chromedp.ID("requester-note")))
	if alice.exists("[data-action]") {
		t.Error("the requester is shown vote buttons on their own request")
	}
	page := alice.text("#approval")
	for _, want := range []string{"Changes to production need an SRE.", "prod-writes-need-sre", "claude-agent", "discardLocalSsd", "once:", "The agent's session so far"} {
		if !strings.Contains(page, want) {
			t.Errorf("the approval page does not show %q:\n%s", want, page)
		}
	}
	alice.checkLabels("approval page")
	alice.shot("requester-waiting")

	// A page of another origin makes the approver's browser post votes
	// with the approver's cookie (same site: the cookie is sent).
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><html><body><iframe name="sink" title="sink"></iframe>
<form id="f" method="post" target="sink" enctype="text/plain" action="%[1]s/v1/approvals/%[2]s:approve"><input name='{"reason":"' value='csrf"}'></form>
<script>
document.getElementById('f').submit();
fetch('%[1]s/v1/approvals/%[2]s:approve', {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'}, body: '{"reason":"csrf"}'})
  .finally(() => setTimeout(() => { document.title = 'done'; }, 500));
</script></body></html>`, base, id)
	}))
	t.Cleanup(evil.Close)
	// A second tab of the approver's browser: it holds the approver's cookie.
	evilTab, closeEvil := chromedp.NewContext(sre.ctx)
	ectx, ecancel := context.WithTimeout(evilTab, 30*time.Second)
	if err := chromedp.Do(ectx, chromedp.Navigate(evil.URL), poll(`document.title === 'done'`)); err != nil {
		t.Fatalf("the other origin's page: %v", err)
	}
	ecancel()
	closeEvil()
	sreToken := iss.Mint(map[string]any{"sub": "sre-1", "email": "sre-1@example.com", "email_verified": true, "groups": []string{"sre"}})
	code, got := api(t, "GET", base+"/v1/approvals/"+id, sreToken, nil)
	if code != 200 || got["state"] != "pending" || len(got["votes"].([]any)) != 0 {
		t.Fatalf("a vote forged from another origin landed: %d %v", code, got)
	}

	// Back on the console: a denial needs a reason; the keyboard opens and
	// closes the confirmation.
	sre.run("back to the queue", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#queue li.card button[data-action="deny"]`)))
	sre.run("deny without a reason",
		chromedp.Click(chromedp.CSS(`#queue li.card button[data-action="deny"]`)),
		chromedp.WaitVisible(chromedp.ID("vote-dialog")),
		chromedp.Click(chromedp.ID("confirm-vote")),
		poll(`document.querySelector('#vote-dialog .error').textContent !== ''`))
	if msg := sre.text("#vote-dialog .error"); !strings.Contains(msg, "needs a reason") {
		t.Errorf("an empty denial reason is not explained: %q", msg)
	}
	sre.run("cancel", chromedp.Click(chromedp.ID("cancel-vote")), chromedp.WaitNotPresent(chromedp.ID("vote-dialog")))
	sre.run("keyboard: focus Approve and press Enter",
		chromedp.Focus(chromedp.CSS(`#queue li.card button[data-action="approve"]`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.ID("vote-dialog")))
	focused := eval[string](sre, "focus is in the dialog", `document.activeElement.id`)
	if focused != "confirm-vote" {
		t.Errorf("the confirmation does not take the focus: %q has it", focused)
	}
	sre.checkLabels("confirmation dialog")
	sre.shot("confirm-approval")
	sre.run("Escape closes it", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(chromedp.ID("vote-dialog")))

	select {
	case h := <-held:
		t.Fatalf("the held request was answered before any vote: %+v %v", h.res, h.err)
	default:
	}
	sre.run("open the confirmation", chromedp.Click(chromedp.CSS(`#queue li.card button[data-action="approve"]`)), chromedp.WaitVisible(chromedp.ID("confirm-vote")))
	clicked := time.Now()
	sre.run("confirm the approval", chromedp.Click(chromedp.ID("confirm-vote")), chromedp.WaitVisible(chromedp.ID("vote-result")))
	var h heldResult
	select {
	case h = <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the held request was not released after the approval")
	}
	if h.err != nil || h.res.Err != nil || !h.res.Allowed {
		t.Fatalf("the held request was not allowed after the approval: %+v %v", h.res, h.err)
	}
	released := h.at.Sub(clicked)
	t.Logf("FIGURE held request released %v after the approver's confirming click (vote round trip included)", released.Round(time.Millisecond))
	if released > 5*time.Second {
		t.Errorf("the held request was released %v after the vote; want within 1s (5s bound)", released)
	}
	if msg := sre.text("#vote-result"); !strings.Contains(msg, "You approved this request") {
		t.Errorf("no visible confirmation of the vote: %q", msg)
	}
	sre.shot("approved")

	// The requester's open page follows by itself.
	alice.run("the requester's page shows the decision", poll(`document.querySelector('#approval .state') && document.querySelector('#approval .state').textContent.includes('Approved')`))
	alice.shot("requester-sees-approved")
}

// TestConsoleSessions: an auditor browses the recordings, opens a session
// whose chunk was edited and sees the edited event marked in red and in
// words, replays and downloads it; the read leaves a trace in the
// recordings; a person outside console.auditors browses nothing; sign-out
// ends the server-side session.
func TestConsoleSessions(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startConsole(t, iss, "0s")
	base := "http://" + a.HTTPAddr
	agent := agentToken(iss)
	ch := checker{t, a.Authz(t), envoyConfig}
	for i := 0; i < 4; i++ {
		res := ch.do("GET", fmt.Sprintf("https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-%d", i), agent, nil, "")
		if !res.Allowed {
			t.Fatalf("read %d refused: %s", i, res.Body)
		}
	}
	sinkDir := filepath.Join(a.Dir, "sink")
	var chunk string
	waitFor(t, 40*time.Second, "the session to reach the sink", func() bool {
		chunk = ""
		_ = filepath.WalkDir(sinkDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".jsonl.gz") && !strings.Contains(p, "checkpoint") {
				chunk = p
			}
			return nil
		})
		return chunk != ""
	})
	session := filepath.Base(filepath.Dir(chunk))
	tamper(t, chunk, 3, "web-2", "web-9")

	b := newBrowser(t)
	auditor := b.person("audit-1")
	auditor.signIn(base, "/sessions", "audit-1", "pw-audit-1")
	auditor.run("the list", chromedp.WaitVisible(chromedp.CSS("#sessions tbody tr")))
	auditor.checkLabels("sessions list")
	if list := auditor.text("#sessions"); !strings.Contains(list, session) || !strings.Contains(list, "alice") || !strings.Contains(list, "claude-agent") {
		t.Errorf("the list does not show the session: %q", list)
	}
	auditor.run("filter by actor", chromedp.SendKeys(chromedp.ID("f-actor"), "nobody-such"), chromedp.Click(chromedp.ID("search")),
		poll(`document.querySelectorAll('#sessions tbody tr').length === 0`))
	auditor.shot("sessions-list")

	auditor.run("open the session", chromedp.Navigate(base+"/sessions/"+session), chromedp.WaitVisible(chromedp.CSS("#timeline li")))
	if v := auditor.text("#verdict"); !strings.Contains(v, "Verification failed") {
		t.Errorf("the verdict does not say the session failed verification: %q", v)
	}
	altered := eval[struct {
		Text       string `json:"text"`
		Background string `json:"bg"`
		Border     string `json:"border"`
	}](auditor, "the edited event", `(() => { const e = document.querySelector('#timeline li.altered'); if (!e) return {}; const s = getComputedStyle(e); return {text: e.textContent, bg: s.backgroundColor, border: s.borderLeftColor}; })()`)
	if !strings.Contains(altered.Text, "ALTERED") || !strings.Contains(altered.Text, "web-9") {
		t.Errorf("the edited event is not marked in words: %q", altered.Text)
	}
	if altered.Background != "rgb(253, 231, 233)" || altered.Border != "rgb(164, 22, 26)" {
		t.Errorf("the edited event is not marked in red: background %s, border %s", altered.Background, altered.Border)
	}
	auditor.checkLabels("session timeline")
	auditor.shot("tampered-timeline")

	// The replay reveals the events one at a time, in order. The recorded
	// events are milliseconds apart, so at 60x the whole replay can finish
	// between two polls: a MutationObserver notes how many events are
	// visible after each step instead (each step is its own timer task, so
	// each gets its own observer callback).
	eval[bool](auditor, "watch the replay", `(() => {
		window.replaySteps = [];
		new MutationObserver(() => window.replaySteps.push(document.querySelectorAll('#timeline li:not([hidden])').length))
			.observe(document.querySelector('#timeline'), {subtree: true, attributes: true, attributeFilter: ['hidden']});
		return true;
	})()`)
	auditor.run("replay at 60x",
		chromedp.SetValue(chromedp.ID("replay-speed"), "60"),
		chromedp.Click(chromedp.ID("replay")),
		poll(`document.querySelector('#timeline li:last-child').hidden === false && document.querySelector('#replay').textContent.includes('Replay')`))
	steps := eval[[]int](auditor, "the replay's steps", `window.replaySteps`)
	events := eval[int](auditor, "count events", `document.querySelectorAll('#timeline li').length`)
	if len(steps) != events || len(steps) == 0 {
		t.Errorf("the replay revealed the events in %d steps %v, want one step per event (%d)", len(steps), steps, events)
	}
	for i, n := range steps {
		if n != i+1 {
			t.Errorf("replay step %d showed %d events, want %d (steps %v)", i+1, n, i+1, steps)
			break
		}
	}
	download := eval[struct {
		Status int    `json:"status"`
		Lines  int    `json:"lines"`
		Type   string `json:"type"`
	}](auditor, "download JSONL", `fetch(document.querySelector('a[href*="format=jsonl"]').href).then(async r => ({status: r.status, type: r.headers.get('content-type'), lines: (await r.text()).trim().split('\n').length}))`, chromedp.EvalAwaitPromise)
	if download.Status != 200 || download.Lines != events || !strings.Contains(download.Type, "ndjson") {
		t.Errorf("JSONL download = %+v, want %d lines", download, events)
	}

	// The auditor's reads are recorded in their own session.
	waitFor(t, 40*time.Second, "the auditor's read in the recordings", func() bool {
		code, out, _ := runCLI(t, nil, "sessions", "list", "--sink", "file://"+sinkDir, "--method", "airlock.sessions.get", "--json")
		return code == 0 && strings.Contains(out, "audit-1")
	})

	alice := b.person("alice")
	alice.signIn(base, "/sessions", "alice", "pw-alice")
	alice.run("not an auditor", chromedp.WaitVisible(chromedp.ID("not-auditor")))

	// Sign-out forgets the session on the server: its cookie is dead.
	got, err := chromedp.Call(auditor.ctx, cdpnetwork.GetCookies, cdpnetwork.GetCookiesParams{URLs: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	var sessionCookie *cdpnetwork.Cookie
	for _, c := range got.Cookies {
		if c.Name == "airlock_session" {
			sessionCookie = c
		}
	}
	if sessionCookie == nil || !sessionCookie.HTTPOnly || sessionCookie.SameSite != cdpnetwork.CookieSameSiteLax {
		t.Fatalf("session cookie = %+v, want HttpOnly SameSite=Lax", sessionCookie)
	}
	auditor.run("sign out from the keyboard", chromedp.Navigate(base+"/sessions"), chromedp.WaitVisible(chromedp.ID("sign-out")),
		chromedp.Focus(chromedp.ID("sign-out")), chromedp.KeyEvent("\r"))
	auditor.waitPath("/auth/logout")
	if h1 := auditor.text("h1"); h1 != "You are signed out" {
		t.Errorf("after sign-out the page says %q", h1)
	}
	auditor.shot("signed-out")
	req, _ := http.NewRequest("GET", base+"/auth/me", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie.Name, Value: sessionCookie.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("the signed-out cookie still works: /auth/me = %d", resp.StatusCode)
	}
	auditor.run("back to sign-in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("f-username")))
}

// tamper edits line n (from 1) of a gzip chunk, replacing old by new.
func tamper(t *testing.T, path string, n int, old, new string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(raw, []byte("\n"))
	if len(lines) < n || !bytes.Contains(lines[n-1], []byte(old)) {
		t.Fatalf("chunk %s has no line %d with %q:\n%s", path, n, old, raw)
	}
	lines[n-1] = bytes.Replace(lines[n-1], []byte(old), []byte(new), 1)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(bytes.Join(lines, []byte("\n")))
	_ = zw.Close()
	_ = os.Chmod(path, 0o644)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleQueueFigure measures, in the browser, how long the queue
// takes to become interactive with 500 pending approvals.
func TestConsoleQueueFigure(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startConsole(t, iss, "0s")
	base := "http://" + a.HTTPAddr
	agent := agentToken(iss)
	ch := checker{t, a.Authz(t), envoyConfig}
	for i := 0; i < 500; i++ {
		res := ch.do("POST", fmt.Sprintf("https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-%d/stop", i), agent, nil, "")
		if res.Allowed || res.Status != 403 {
			t.Fatalf("request %d was not held for approval: %d %s", i, res.Status, res.Body)
		}
	}
	b := newBrowser(t)
	sre := b.person("sre-1")
	sre.signIn(base, "/", "sre-1", "pw-sre-1")
	var best float64
	for run := 0; run < 3; run++ {
		sre.run("load the queue", chromedp.Navigate(base+"/"), poll(`performance.getEntriesByName('airlock-interactive').length > 0`))
		ms := eval[float64](sre, "read the mark", `performance.getEntriesByName('airlock-interactive')[0].startTime`)
		t.Logf("FIGURE queue of 500 pending approvals interactive %.0f ms after navigation (run %d)", ms, run+1)
		if run == 0 || ms < best {
			best = ms
		}
	}
	cards := eval[int](sre, "count cards", `document.querySelectorAll('#queue li.card button[data-action="approve"]').length`)
	if cards != 50 {
		t.Errorf("the first page holds %d approvals with vote buttons, want 50", cards)
	}
	if !sre.exists("#older:not([disabled])") {
		t.Error("no way to the older approvals")
	}
	sre.shot("queue-500")
	if best > 5000 {
		t.Errorf("the queue became interactive after %.0f ms with 500 pending approvals; want within 1s (5s bound)", best)
	}
}

// TestConsoleDevSignIn: the local trial's dev issuer signs people in to the
// console with the same code flow, so the console works out of the box.
func TestConsoleDevSignIn(t *testing.T) {
	a := startAirlock(t, func(p Ports, dir string) string {
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
identity: {dev: true}
policies: {paths: [%q]}
recorder: {sink: "file://%s/sink", spool: "%s/spool", durability: check}
`, p.Authz, p.HTTP, filepath.Join(repoRoot, "policies", "examples"), dir, dir)
	})
	base := "http://" + a.HTTPAddr
	b := newBrowser(t)
	p := b.person("dev")
	p.run("sign in with the dev form",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("f-sub")),
		chromedp.Clear(chromedp.ID("f-sub")), chromedp.SendKeys(chromedp.ID("f-sub"), "dana"),
		chromedp.Clear(chromedp.ID("f-email")), chromedp.SendKeys(chromedp.ID("f-email"), "dana@example.com"),
		chromedp.Clear(chromedp.ID("f-groups")), chromedp.SendKeys(chromedp.ID("f-groups"), "sre, oncall"),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("queue-empty")))
	if who := p.text("#who"); !strings.Contains(who, "dana@example.com") || !strings.Contains(who, "oncall") {
		t.Errorf("signed in as %q", who)
	}
	p.shot("dev-queue")
	if !strings.Contains(a.Logs(), "the console signs people in with the dev issuer") {
		t.Error("the server does not say loudly that anyone on this host may sign in as anybody")
	}
}
