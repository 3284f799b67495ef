package approvals

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Paging of the list of approvals. The list runs newest first (creation
// time, then id); a page token is the opaque position after the last
// approval a page examined, tied to the state filter it was made for.
const (
	// DefaultPageSize is the page size when none is asked for.
	DefaultPageSize = 100
	// MaxPageSize is the largest page size.
	MaxPageSize = 500
	// maxScan bounds the approvals one List call examines: a page of
	// approvals the caller may not see ends early, with a token to go on.
	maxScan = 5000
)

// ListOptions select a page of approvals.
type ListOptions struct {
	// State filters by state at now; "" lists every state.
	State State
	// PageSize is the most approvals returned: 0 means DefaultPageSize,
	// more than MaxPageSize is refused.
	PageSize int
	// PageToken continues a previous List with the same State.
	PageToken string
	// Visible, when set, keeps only the approvals it accepts (the caller's
	// view); the others are skipped without counting against PageSize.
	Visible func(Approval) bool
}

// ListResult is one page.
type ListResult struct {
	// Approvals are newest first, with their state at now.
	Approvals []Approval
	// NextPageToken continues the list; "" when it ended.
	NextPageToken string
}

type pageToken struct {
	V     int    `json:"v"`
	MS    int64  `json:"c"`
	ID    string `json:"i"`
	State State  `json:"s"`
}

func encodeToken(c Cursor, st State) string {
	b, _ := json.Marshal(pageToken{V: 1, MS: c.CreatedMS, ID: c.ID, State: st})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok string, st State) (Cursor, error) {
	bad := fmt.Errorf("approvals: list: %w: page_token is not a token this list returned; start again without it", ErrInvalid)
	if len(tok) > 256 {
		return Cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return Cursor{}, bad
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.V != 1 || t.MS <= 0 || !ValidID(t.ID) {
		return Cursor{}, bad
	}
	if t.State != st {
		return Cursor{}, fmt.Errorf("approvals: list: %w: page_token was made for state %q, not %q; keep the same state while paging", ErrInvalid, t.State, st)
	}
	return Cursor{CreatedMS: t.MS, ID: t.ID}, nil
}

// List returns one page of approvals, newest first, with their state at
// now. It walks the store with a cursor, so every approval the store holds
// is reachable by following NextPageToken.
func (s *Service) List(ctx context.Context, o ListOptions) (ListResult, error) {
	switch o.State {
	case "", StatePending, StateApproved, StateDenied, StateExpired:
	default:
		return ListResult{}, fmt.Errorf("approvals: list: %w: state %q must be pending, approved, denied or expired", ErrInvalid, o.State)
	}
	switch {
	case o.PageSize == 0:
		o.PageSize = DefaultPageSize
	case o.PageSize < 0 || o.PageSize > MaxPageSize:
		return ListResult{}, fmt.Errorf("approvals: list: %w: page_size must be between 1 and %d", ErrInvalid, MaxPageSize)
	}
	var cur Cursor
	if o.PageToken != "" {
		c, err := decodeToken(o.PageToken, o.State)
		if err != nil {
			return ListResult{}, err
		}
		cur = c
	}
	now := s.now()
	out := ListResult{Approvals: []Approval{}}
	scanned := 0
	for {
		batch := min(MaxPageSize, maxScan-scanned)
		page, err := s.store.List(ctx, cur, batch)
		if err != nil {
			return ListResult{}, fmt.Errorf("approvals: list: %w: %w", ErrUnavailable, err)
		}
		scanned += batch
		for i, a := range page.Approvals {
			a.State = a.Effective(now)
			if (o.State != "" && a.State != o.State) || (o.Visible != nil && !o.Visible(a)) {
				continue
			}
			out.Approvals = append(out.Approvals, a)
			if len(out.Approvals) == o.PageSize {
				if i < len(page.Approvals)-1 || page.More {
					out.NextPageToken = encodeToken(cursorOf(a), o.State)
				}
				return out, nil
			}
		}
		cur = page.Next
		if !page.More {
			return out, nil
		}
		if scanned >= maxScan {
			out.NextPageToken = encodeToken(cur, o.State)
			return out, nil
		}
	}
}
