package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/identity/identitytest"
)

// chromium finds the browser: a missing one fails under CI=true (make
// test-deps installs Debian's chromium) and skips elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (make test-deps installs it: apt-get install chromium)")
	}
	t.Skip("chromium is not installed: apt-get install chromium (make test-deps does)")
	return ""
}

// browser is one headless Chromium for a test; each person gets a tab
// with cookies of their own (a browser context).
type browser struct {
	t     *testing.T
	alloc context.Context
	root  context.Context
	dir   string
	shots int
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil {
		cancelRoot()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	// Screenshots go under the test's temporary directory, or under
	// $AIRLOCK_SCREENSHOTS (kept, for a CI artifact) when it is set.
	dir := filepath.Join(t.TempDir(), "screenshots")
	if keep := os.Getenv("AIRLOCK_SCREENSHOTS"); keep != "" {
		dir = filepath.Join(keep, t.Name())
	}
	_ = os.MkdirAll(dir, 0o755)
	return &browser{t: t, alloc: alloc, root: root, dir: dir}
}

// person is one signed-in browser tab whose console errors fail the test.
type person struct {
	b    *browser
	name string
	ctx  context.Context

	mu     sync.Mutex
	errors []string
}

func (b *browser) person(name string) *person {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	p := &person{b: b, name: name, ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				p.mu.Lock()
				p.errors = append(p.errors, m.String()+" "+m.URL)
				p.mu.Unlock()
			}
		}
	}()
	b.t.Cleanup(func() {
		cancel()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errors {
			b.t.Errorf("%s's page logged an error: %s", name, e)
		}
	})
	return p
}

// run runs steps in the person's tab with a deadline.
func (p *person) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fail(what, err)
	}
}

func (p *person) fail(what string, err error) {
	p.b.t.Helper()
	p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
	sctx, scancel := context.WithTimeout(p.ctx, 3*time.Second)
	url, _ := chromedp.Run(sctx, chromedp.Location())
	text, _ := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("body")))
	scancel()
	p.b.t.Fatalf("%s: %s: %v\nat %s\npage text:\n%s", p.name, what, err, url, indent(text))
}

// eval evaluates a JavaScript expression in the person's page.
func eval[T any](p *person, what, expr string, opts ...chromedp.EvaluateOption) T {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.fail(what, err)
	}
	return v
}

// shot saves a screenshot under the test's temporary directory.
func (p *person) shot(name string) {
	p.b.shots++
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return
	}
	path := filepath.Join(p.b.dir, fmt.Sprintf("%02d-%s-%s.png", p.b.shots, p.name, name))
	if err := os.WriteFile(path, buf, 0o644); err == nil {
		p.b.t.Logf("screenshot: %s", path)
	}
}

// signIn opens path on the console, is sent to the issuer's sign-in form,
// signs in and lands back on path.
func (p *person) signIn(base, path, user, password string) {
	p.b.t.Helper()
	p.run("sign in as "+user,
		chromedp.Navigate(base+path),
		chromedp.WaitVisible(chromedp.ID("f-username")),
		chromedp.SendKeys(chromedp.ID("f-username"), user),
		chromedp.SendKeys(chromedp.ID("f-password"), password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("who-name")),
	)
	if loc := eval[string](p, "read location", "location.href"); loc != base+path {
		p.b.t.Fatalf("%s: after sign-in the browser is at %s, want %s", p.name, loc, base+path)
	}
}

// checkLabels fails when a control of the page has no accessible name.
func (p *person) checkLabels(where string) {
	p.b.t.Helper()
	unlabelled := eval[[]string](p, "check labels", `Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')).filter(e => {
		if (e.closest('[hidden]')) return false;
		const named = (e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || (e.textContent || '').trim();
		return !named;
	}).map(e => e.outerHTML.slice(0, 120))`)
	if len(unlabelled) > 0 {
		p.b.t.Errorf("%s: controls without a label: %q", where, unlabelled)
	}
}

// text returns the text of the first node matching the CSS selector sel.
func (p *person) text(sel string) string {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.fail("read "+sel, err)
	}
	return s
}

// exists reports whether the CSS selector sel matches a node now.
func (p *person) exists(sel string) bool {
	p.b.t.Helper()
	return eval[int](p, "count "+sel, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)) > 0
}

// waitPath waits, across navigations, until the page's path is path.
func (p *person) waitPath(path string) {
	p.b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + (document.readyState === 'complete' ? '' : '#loading')`))
		cancel()
		if err == nil && got == path {
			return
		}
		if time.Now().After(deadline) {
			p.fail("wait for "+path, fmt.Errorf("the page is at %q (%v)", got, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poll waits until the JavaScript expression holds.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))
}

// consoleUsers registers the console client at iss and its people: an
// approver, the human behind the agent, an auditor.
func consoleUsers(iss *identitytest.Issuer) {
	iss.AddUser("sre-1", "pw-sre-1", map[string]any{"sub": "sre-1", "email": "sre-1@example.com", "email_verified": true, "groups": []string{"sre"}})
	iss.AddUser("alice", "pw-alice", map[string]any{"sub": "alice", "email": "alice@example.com", "email_verified": true, "groups": []string{"dev"}})
	iss.AddUser("audit-1", "pw-audit-1", map[string]any{"sub": "audit-1", "email": "audit-1@example.com", "email_verified": true, "groups": []string{"audit"}})
}

// startConsole runs airlock with the console signing in at iss, approvals
// held for hold, and recording into a file sink.
func startConsole(t *testing.T, iss *identitytest.Issuer, hold string) *Airlock {
	t.Helper()
	consoleUsers(iss)
	return startAirlock(t, func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", approvalPolicy)
		secret := filepath.Join(dir, "console-secret")
		if err := os.WriteFile(secret, []byte("console-secret-value\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		iss.RegisterClient("airlock-console", "console-secret-value", "http://"+p.HTTP+"/auth/callback")
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
authz: {timeout: 5s}
approvals: {store: memory, hold: %s, public_url: "http://%s", max_pending_per_subject: 10000}
recorder: {sink: "file://%s/sink", spool: "%s/spool", durability: check}
console:
  issuer: %s
  client_id: airlock-console
  client_secret_file: %s
  auditors: [group:audit]
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, hold, p.HTTP, dir, dir, iss.URL(), secret)
	})
}

// agentToken is the agent's token: the agent claude-agent acting for alice.
func agentToken(iss *identitytest.Issuer) string {
	return iss.Mint(map[string]any{"sub": "alice", "email": "alice@example.com", "email_verified": true, "groups": []string{"ai-agents"},
		"act": map[string]any{"sub": "claude-agent"}})
}
