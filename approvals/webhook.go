package approvals

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// webhookQueue bounds the notifications waiting to be sent.
const webhookQueue = 256

// webhookBackoff is the wait before each retry.
var webhookBackoff = []time.Duration{200 * time.Millisecond, time.Second, 4 * time.Second}

// notifier posts approval events to webhooks from a bounded queue: a slow
// or failing webhook never blocks a gate or a vote.
type notifier struct {
	urls   []string
	client *http.Client
	log    *slog.Logger
	queue  chan webhookEvent
	drops  atomic.Int64
	sent   atomic.Int64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

type webhookEvent struct {
	body []byte
}

// webhookPayload is what a webhook receives: Slack-compatible text plus the
// structured approval.
type webhookPayload struct {
	Text       string   `json:"text"`
	Event      string   `json:"event"`
	ApproveURL string   `json:"approve_url"`
	Approval   Approval `json:"approval"`
}

func newNotifier(raw []string, log *slog.Logger) *notifier {
	var urls []string
	for i, u := range raw {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			// The URL may hold a secret (Slack hooks do): name it by position.
			log.Error("approvals: webhook ignored: not an http(s) URL", "webhook", i)
			continue
		}
		urls = append(urls, u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{urls: urls, client: &http.Client{Timeout: 10 * time.Second}, log: log,
		queue: make(chan webhookEvent, webhookQueue), ctx: ctx, cancel: cancel}
	if len(urls) > 0 {
		n.wg.Add(1)
		go n.run()
	}
	return n
}

func webhookText(event string, a Approval, approveURL string) string {
	r := a.Request
	target := r.Operation
	if target == "" {
		target = r.Method + " " + r.URL
	}
	switch event {
	case "pending":
		return fmt.Sprintf("Approval needed: %s wants %s on %s (rule %s, expires %s). Review: %s",
			r.Requester(), target, cmp.Or(r.Resource, r.URL), r.Rule, a.ExpiresAt.UTC().Format(time.RFC3339), approveURL)
	case "approved":
		return fmt.Sprintf("Approved: %s for %s (approval %s).", target, r.Requester(), a.ID)
	default:
		return fmt.Sprintf("Denied by %s: %s for %s (approval %s). Reason: %s", a.Denier(), target, r.Requester(), a.ID, a.DenialReason())
	}
}

// enqueue queues an event without blocking; a full queue drops it (counted).
func (n *notifier) enqueue(event string, a Approval, approveURL string) {
	if len(n.urls) == 0 {
		return
	}
	body, err := json.Marshal(webhookPayload{Text: webhookText(event, a, approveURL), Event: event, ApproveURL: approveURL, Approval: a})
	if err != nil {
		n.drops.Add(1)
		return
	}
	select {
	case n.queue <- webhookEvent{body: body}:
	default:
		n.drops.Add(1)
		n.log.Warn("approvals: webhook queue full; notification dropped", "approval_id", a.ID, "event", event)
	}
}

func (n *notifier) run() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev := <-n.queue:
			for _, u := range n.urls {
				n.post(u, ev.body)
			}
		}
	}
}

// post delivers body to u, retrying with backoff.
func (n *notifier) post(u string, body []byte) {
	for attempt := 0; ; attempt++ {
		err := n.postOnce(u, body)
		if err == nil {
			n.sent.Add(1)
			return
		}
		if attempt >= len(webhookBackoff) {
			n.drops.Add(1)
			n.log.Warn("approvals: webhook failed; notification dropped", "err", err, "attempts", attempt+1)
			return
		}
		select {
		case <-n.ctx.Done():
			n.drops.Add(1)
			return
		case <-time.After(webhookBackoff[attempt]):
		}
	}
}

func (n *notifier) postOnce(u string, body []byte) error {
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		// The URL may hold a secret (Slack hooks do): log only the error kind.
		return fmt.Errorf("webhook post: %T", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// close stops the worker after the queue drains or 2 s pass.
func (n *notifier) close() {
	n.once.Do(func() {
		deadline := time.Now().Add(2 * time.Second)
		for len(n.queue) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		n.cancel()
		n.wg.Wait()
	})
}
