package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlockhq/airlock/approvals"
)

const approvalsUsage = `usage: airlock approvals <command> [flags]

Commands:
  list [--state pending|approved|denied|expired|all]   list approvals (default: pending), following
       [--page-size N] [--page-token T]                every page; with --page-token, one page and
                                                       the token of the next
  show ID                                              show one approval
  approve ID [--reason TEXT]                           approve it
  deny ID --reason TEXT                                deny it; the agent sees the reason

Flags (every command):
  --server URL   airlock HTTP API (default http://127.0.0.1:8080)
  --token TOKEN  your OIDC token (default $AIRLOCK_TOKEN)
  --json         print the API's JSON

Exit status: 0 done, 1 the server refused or failed (the message says why),
2 usage error.
`

// runApprovals is `airlock approvals ...`: the approver's CLI over the HTTP API.
func runApprovals(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if code, done := groupUsage(args, approvalsUsage, stdout, stderr); done {
		return code
	}
	cmd := args[0]
	fs := newFlagSet("approvals "+cmd, approvalsUsage, stderr)
	server := fs.String("server", "http://127.0.0.1:8080", "airlock HTTP API")
	token := fs.String("token", "", "OIDC token (default $AIRLOCK_TOKEN)")
	asJSON := fs.Bool("json", false, "print JSON")
	state := fs.String("state", "pending", "list: pending, approved, denied, expired or all")
	reason := fs.String("reason", "", "approve/deny: the reason")
	pageSize := fs.Int("page-size", 0, "list: approvals per page (1-500; default: the server's)")
	pageToken := fs.String("page-token", "", "list: fetch the page this token names, only")
	pos, code, ok := parseFlags(fs, args[1:], stdout)
	if !ok {
		return code
	}
	if *token == "" {
		*token = os.Getenv("AIRLOCK_TOKEN")
	}
	if *token == "" {
		fmt.Fprintln(stderr, "airlock approvals: no token: pass --token or set AIRLOCK_TOKEN to your OIDC token")
		return 2
	}
	base, err := url.Parse(strings.TrimRight(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintf(stderr, "airlock approvals: --server %q: want http(s)://host:port\n", *server)
		return 2
	}
	c := approvalsClient{base: base.String(), token: *token, http: &http.Client{Timeout: 30 * time.Second}}

	wantID := func() (string, bool) {
		if len(pos) != 1 {
			fmt.Fprintf(stderr, "airlock approvals %s: want exactly one approval ID\n", cmd)
			return "", false
		}
		if !approvals.ValidID(pos[0]) {
			fmt.Fprintf(stderr, "airlock approvals %s: %q is not an approval ID (26 characters a-z, 2-7)\n", cmd, pos[0])
			return "", false
		}
		return pos[0], true
	}
	switch cmd {
	case "list":
		if len(pos) != 0 {
			fmt.Fprintln(stderr, "airlock approvals list: takes no arguments")
			return 2
		}
		if *pageSize < 0 || *pageSize > approvals.MaxPageSize {
			fmt.Fprintf(stderr, "airlock approvals list: --page-size must be between 1 and %d\n", approvals.MaxPageSize)
			return 2
		}
		q := url.Values{}
		if *state != "all" && *state != "" {
			q.Set("state", *state)
		}
		if *pageSize > 0 {
			q.Set("page_size", strconv.Itoa(*pageSize))
		}
		if *pageToken != "" {
			// One page, as the API gives it.
			q.Set("page_token", *pageToken)
			raw, page, err := c.listPage(ctx, q)
			if err != nil {
				return approvalsFail(stderr, err)
			}
			if *asJSON {
				_, _ = stdout.Write(raw)
				return 0
			}
			approvalsTable(stdout, page.Approvals)
			if page.Next != "" {
				fmt.Fprintf(stdout, "next page: --page-token %s\n", termSafe(page.Next))
			}
			return 0
		}
		var all []approvals.Approval
		seen := map[string]bool{}
		for {
			_, page, err := c.listPage(ctx, q)
			if err != nil {
				return approvalsFail(stderr, err)
			}
			all = append(all, page.Approvals...)
			if page.Next == "" {
				break
			}
			if seen[page.Next] {
				return approvalsFail(stderr, errors.New("the server returned the same page token twice"))
			}
			seen[page.Next] = true
			q.Set("page_token", page.Next)
		}
		if all == nil {
			all = []approvals.Approval{}
		}
		if *asJSON {
			out, _ := json.MarshalIndent(map[string]any{"approvals": all}, "", "  ")
			_, _ = stdout.Write(append(out, '\n'))
			return 0
		}
		approvalsTable(stdout, all)
		return 0
	case "show", "approve", "deny":
		id, ok := wantID()
		if !ok {
			return 2
		}
		method, path := http.MethodGet, "/v1/approvals/"+id
		var body []byte
		if cmd != "show" {
			if cmd == "deny" && strings.TrimSpace(*reason) == "" {
				fmt.Fprintln(stderr, "airlock approvals deny: --reason is required: the agent is told why")
				return 2
			}
			method, path = http.MethodPost, path+":"+cmd
			body, _ = json.Marshal(map[string]string{"reason": *reason})
		}
		raw, err := c.do(ctx, method, path, body)
		if err != nil {
			return approvalsFail(stderr, err)
		}
		if *asJSON {
			_, _ = stdout.Write(raw)
			return 0
		}
		var a approvals.Approval
		if err := json.Unmarshal(raw, &a); err != nil {
			return approvalsFail(stderr, fmt.Errorf("decode response: %w", err))
		}
		if cmd != "show" {
			fmt.Fprintf(stdout, "voted %s on %s: the approval is now %s\n", cmd, id, a.State)
		}
		approvalsShow(stdout, a)
		return 0
	default:
		fmt.Fprintf(stderr, "airlock approvals: unknown command %q\n\n%s", cmd, approvalsUsage)
		return 2
	}
}

// approvalsPage is one page of the list API.
type approvalsPage struct {
	Approvals []approvals.Approval `json:"approvals"`
	Next      string               `json:"next_page_token"`
}

func (c approvalsClient) listPage(ctx context.Context, q url.Values) ([]byte, approvalsPage, error) {
	path := "/v1/approvals"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	raw, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, approvalsPage{}, err
	}
	var p approvalsPage
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, approvalsPage{}, fmt.Errorf("decode response: %w", err)
	}
	return raw, p, nil
}

type approvalsClient struct {
	base, token string
	http        *http.Client
}

// approvalsAPIError is an error answer of the API.
type approvalsAPIError struct {
	Code    int
	Status  string
	Message string
}

func (e *approvalsAPIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, e.Status, e.Message)
}

func (c approvalsClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error approvalsAPIError `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			e.Error.Code = resp.StatusCode
			return nil, &e.Error
		}
		return nil, &approvalsAPIError{Code: resp.StatusCode, Status: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
	}
	return raw, nil
}

func approvalsFail(stderr io.Writer, err error) int {
	var apiErr *approvalsAPIError
	if errors.As(err, &apiErr) {
		errorf(stderr, "approvals", "%s (%d %s)", apiErr.Message, apiErr.Code, apiErr.Status)
		return 1
	}
	errorf(stderr, "approvals", "%v", err)
	return 1
}

func approvalsTable(w io.Writer, list []approvals.Approval) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no approvals")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tREQUESTER\tOPERATION\tRULE\tEXPIRES")
	for _, a := range list {
		op := a.Request.Operation
		if op == "" {
			op = a.Request.Method + " " + a.Request.URL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", termSafe(a.ID), termSafe(string(a.State)), termSafe(a.Request.Requester()), termSafe(op), termSafe(a.Request.Rule), a.ExpiresAt.UTC().Format(time.RFC3339))
	}
	_ = tw.Flush()
}

func approvalsShow(w io.Writer, a approvals.Approval) {
	r := a.Request
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// Every value may come from the agent (URL, body) or a voter (reason).
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, termSafe(v))
		}
	}
	row("ID", a.ID)
	row("State", string(a.State))
	row("Requester", r.Requester())
	row("Actor", r.Actor)
	row("Operation", r.Operation)
	row("Resource", r.Resource)
	row("Request", r.Method+" "+r.URL)
	rule := r.Rule
	if r.Policy != "" {
		rule = r.Policy + "/" + r.Rule
	}
	row("Rule", rule)
	row("Approvers", fmt.Sprintf("%s (need %d)", strings.Join(r.Approvers, ", "), r.MinApprovals))
	row("Grant", fmt.Sprintf("%s for %s", r.Grant, r.TTL))
	row("Created", a.CreatedAt.UTC().Format(time.RFC3339))
	row("Expires", a.ExpiresAt.UTC().Format(time.RFC3339))
	if !a.ClaimedAt.IsZero() {
		row("Claimed", fmt.Sprintf("%s (%d uses)", a.ClaimedAt.UTC().Format(time.RFC3339), a.Uses))
	}
	for _, v := range a.Votes {
		d := "denied"
		if v.Approve {
			d = "approved"
		}
		who := v.Email
		if who == "" {
			who = v.Approver
		}
		row("Vote", fmt.Sprintf("%s by %s at %s: %s", d, who, v.At.UTC().Format(time.RFC3339), v.Reason))
	}
	_ = tw.Flush()
	if r.Justification != "" {
		fmt.Fprintf(w, "Justification:\n%s\n", termSafeLines(r.Justification))
	}
	if r.BodyExcerpt != "" {
		fmt.Fprintf(w, "Body:\n%s\n", termSafeLines(r.BodyExcerpt))
	}
}
