package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
)

// maxVoteBody bounds a vote's JSON body.
const maxVoteBody = 16 << 10

// apiTimeout bounds each API call's store work.
const apiTimeout = 10 * time.Second

// NewHandler serves the approvals API:
//
//	GET  /v1/approvals[?state=pending|approved|denied|expired][&page_size=N][&page_token=T]
//	                                                            -> {"approvals": [...], "next_page_token": "..."}
//	GET  /v1/approvals/{id}                                     -> approval
//	GET  /v1/approvals/{id}:policyDiff                          -> the IAM policy change (HandlerOptions.PolicyDiff)
//	POST /v1/approvals/{id}:approve   {"reason": "..."}          -> approval
//	POST /v1/approvals/{id}:deny      {"reason": "..."}          -> approval
//
// Every call needs "Authorization: Bearer <OIDC token>" verified by v, or
// a console sign-in (HandlerOptions.Session). An approval is shown only to
// its approvers and its requester, with a "viewer" object saying what the
// caller may do with it (by the rules a vote must pass). A list page holds
// page_size approvals (default 100, at most 500) the caller may see;
// next_page_token, absent on the last page, continues it. Errors use
// Google's JSON shape {"error": {"code", "status", "message"}}.
func NewHandler(s *Service, v identity.Verifier, logger *slog.Logger) http.Handler {
	return NewHandlerWith(s, v, logger, HandlerOptions{})
}

// HandlerOptions extend the API for the console.
type HandlerOptions struct {
	// Session authenticates a request that carries no bearer token (a
	// signed-in browser): ok is false when it carries no sign-in, and err
	// refuses it (a state-changing request that fails its CSRF check).
	Session func(r *http.Request) (id identity.Identity, ok bool, err error)
	// PolicyDiff, when set, describes what an approval's IAM policy change
	// adds and removes; the API serves it to the approval's viewers.
	PolicyDiff func(ctx context.Context, a Approval) (any, error)
}

// NewHandlerWith is NewHandler with the console's extensions.
func NewHandlerWith(s *Service, v identity.Verifier, logger *slog.Logger, o HandlerOptions) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{s: s, v: v, o: o, log: logger.With("component", "approvals-api")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/approvals", h.list)
	mux.HandleFunc("GET /v1/approvals/{rest}", h.get)
	mux.HandleFunc("POST /v1/approvals/{rest}", h.vote)
	return mux
}

type handler struct {
	s   *Service
	v   identity.Verifier
	o   HandlerOptions
	log *slog.Logger
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(handoff.ErrorBody(code, status, msg, "", nil), '\n'))
}

// errorStatus maps a Service error to an HTTP code and a Google status.
func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "INVALID_ARGUMENT"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "NOT_FOUND"
	case errors.Is(err, ErrNotApprover), errors.Is(err, ErrSelfApproval), errors.Is(err, ErrDelegated):
		return http.StatusForbidden, "PERMISSION_DENIED"
	case errors.Is(err, ErrExpired):
		return http.StatusConflict, "FAILED_PRECONDITION"
	case errors.Is(err, ErrDecided):
		return http.StatusConflict, "ABORTED"
	default:
		return http.StatusServiceUnavailable, "UNAVAILABLE"
	}
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	code, status := errorStatus(err)
	msg := err.Error()
	if code == http.StatusServiceUnavailable {
		h.log.Warn("approvals API: store failure", "err", err)
		msg = "approvals: the approval store is unavailable; retry shortly"
	}
	writeError(w, code, status, msg)
}

// authenticate verifies the bearer token, or else the console sign-in; it
// writes the refusal itself.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (identity.Identity, bool) {
	if r.Header.Get("Authorization") == "" && h.o.Session != nil {
		id, ok, err := h.o.Session(r)
		if errors.Is(err, ErrUnavailable) {
			writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "approvals: "+err.Error())
			return identity.Identity{}, false
		}
		if err != nil {
			writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "approvals: "+err.Error())
			return identity.Identity{}, false
		}
		if ok {
			return id, true
		}
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "approvals: send your OIDC token as \"Authorization: Bearer <token>\", or sign in to the console")
		return identity.Identity{}, false
	}
	id, err := h.v.Verify(r.Context(), raw)
	if err != nil {
		var ie *identity.Error
		if errors.As(err, &ie) && ie.Kind == identity.Unavailable {
			writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", err.Error())
			return identity.Identity{}, false
		}
		msg := "approvals: token refused"
		if errors.As(err, &ie) {
			msg = "approvals: token refused: " + ie.Msg
		}
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msg)
		return identity.Identity{}, false
	}
	return id, true
}

// visible: an approval is shown to its approvers and its requester only.
func visible(a Approval, id identity.Identity) bool {
	return IsApprover(a.Request.Approvers, id) || isRequester(a.Request, id)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	size := 0
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("approvals: page_size must be a number between 1 and %d", MaxPageSize))
			return
		}
		size = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	res, err := h.s.List(ctx, ListOptions{
		State: State(q.Get("state")), PageSize: size, PageToken: q.Get("page_token"),
		Visible: func(a Approval) bool { return visible(a, caller) },
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	list := make([]json.RawMessage, len(res.Approvals))
	for i, a := range res.Approvals {
		v := h.s.ViewerOf(a, caller)
		if list[i], err = a.marshalFor(&v); err != nil {
			h.fail(w, err)
			return
		}
	}
	body := map[string]any{"approvals": list}
	if res.NextPageToken != "" {
		body["next_page_token"] = res.NextPageToken
	}
	writeJSON(w, http.StatusOK, body)
}

// viewed is an approval as one caller sees it.
type viewed struct {
	a Approval
	v Viewer
}

func (x viewed) MarshalJSON() ([]byte, error) { return x.a.marshalFor(&x.v) }

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	id, verb, _ := strings.Cut(r.PathValue("rest"), ":")
	switch {
	case verb == "policyDiff" && h.o.PolicyDiff != nil:
	case verb != "":
		writeError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "approvals: use POST for :approve and :deny")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	a, err := h.s.Get(ctx, id)
	if err != nil {
		h.fail(w, err)
		return
	}
	if !visible(a, caller) {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "approvals: "+id+": "+ErrNotApprover.Error()+" and not its requester")
		return
	}
	if verb == "policyDiff" {
		d, err := h.o.PolicyDiff(ctx, a)
		if err != nil {
			h.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, d)
		return
	}
	writeJSON(w, http.StatusOK, viewed{a, h.s.ViewerOf(a, caller)})
}

func (h *handler) vote(w http.ResponseWriter, r *http.Request) {
	voter, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	id, verb, found := strings.Cut(r.PathValue("rest"), ":")
	if !found || (verb != "approve" && verb != "deny") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "approvals: POST /v1/approvals/{id}:approve or /v1/approvals/{id}:deny")
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxVoteBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "approvals: read body: "+err.Error())
		return
	}
	if len(b) > maxVoteBody {
		writeError(w, http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", "approvals: body larger than 16 KiB")
		return
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", `approvals: body must be {"reason": "..."}: `+err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	a, err := h.s.Vote(ctx, id, voter, verb == "approve", body.Reason)
	if err != nil {
		h.fail(w, err)
		return
	}
	a.State = a.Effective(h.s.now())
	writeJSON(w, http.StatusOK, viewed{a, h.s.ViewerOf(a, voter)})
}
