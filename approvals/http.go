package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/identity"
)

// maxVoteBody bounds a vote's JSON body.
const maxVoteBody = 16 << 10

// apiTimeout bounds each API call's store work.
const apiTimeout = 10 * time.Second

// NewHandler serves the approvals API and web page:
//
//	GET  /v1/approvals[?state=pending|approved|denied|expired][&page_size=N][&page_token=T]
//	                                                            -> {"approvals": [...], "next_page_token": "..."}
//	GET  /v1/approvals/{id}                                     -> approval
//	POST /v1/approvals/{id}:approve   {"reason": "..."}          -> approval
//	POST /v1/approvals/{id}:deny      {"reason": "..."}          -> approval
//	GET  /approvals                                             -> HTML page
//
// Every /v1 call needs "Authorization: Bearer <OIDC token>" verified by v.
// An approval is shown only to its approvers and its requester. A list
// page holds page_size approvals (default 100, at most 500) the caller may
// see; next_page_token, absent on the last page, continues it.
// Errors use Google's JSON shape {"error": {"code", "status", "message"}}.
func NewHandler(s *Service, v identity.Verifier, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{s: s, v: v, log: logger.With("component", "approvals-api")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/approvals", h.list)
	mux.HandleFunc("GET /v1/approvals/{rest}", h.get)
	mux.HandleFunc("POST /v1/approvals/{rest}", h.vote)
	mux.HandleFunc("GET /approvals", h.page)
	return mux
}

type handler struct {
	s   *Service
	v   identity.Verifier
	log *slog.Logger
}

type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
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
	var e apiError
	e.Error.Code, e.Error.Status, e.Error.Message = code, status, msg
	writeJSON(w, code, e)
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

// authenticate verifies the bearer token; it writes the 401 itself.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (identity.Identity, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "approvals: send your OIDC token as \"Authorization: Bearer <token>\"")
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
	body := map[string]any{"approvals": res.Approvals}
	if res.NextPageToken != "" {
		body["next_page_token"] = res.NextPageToken
	}
	writeJSON(w, http.StatusOK, body)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	id := r.PathValue("rest")
	if strings.Contains(id, ":") {
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
	writeJSON(w, http.StatusOK, a)
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
	writeJSON(w, http.StatusOK, a)
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	_ = pageTemplate.Execute(w, nil)
}

// pageTemplate lists pending approvals with the API, using a token the
// approver pastes (kept in sessionStorage only). Values reach the DOM as
// textContent, never as HTML.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>airlock approvals</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
.card{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}
.card:target{border-color:#06c;box-shadow:0 0 0 2px #06c3}
pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;word-break:break-all}
dt{font-weight:bold}#msg{color:#a00}
</style></head><body>
<h1>Pending approvals</h1>
<p><label>Your OIDC token: <input id="token" type="password" size="60" autocomplete="off"></label>
<button id="load">Load</button> <span id="msg"></span></p>
<div id="list"></div>
<script>
const tok = document.getElementById('token');
tok.value = sessionStorage.getItem('airlock-token') || '';
const msg = document.getElementById('msg');
function el(tag, text){const e=document.createElement(tag); if(text!==undefined) e.textContent=text; return e;}
async function api(method, path, body){
  sessionStorage.setItem('airlock-token', tok.value);
  const r = await fetch(path, {method, headers:{'Authorization':'Bearer '+tok.value,'Content-Type':'application/json'}, body: body?JSON.stringify(body):undefined});
  const j = await r.json().catch(()=>({error:{message:r.statusText}}));
  if(!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
  return j;
}
async function load(){
  msg.textContent='';
  const list=document.getElementById('list'); list.replaceChildren();
  try{
    let all = [], tok = '';
    do {
      const j = await api('GET','/v1/approvals?state=pending&page_size=500'+(tok?'&page_token='+encodeURIComponent(tok):''));
      all = all.concat(j.approvals); tok = j.next_page_token || '';
    } while(tok && all.length < 5000);
    if(all.length===0) list.append(el('p','Nothing is waiting.'));
    for(const a of all){
      const c=el('div'); c.className='card'; c.id=a.id;
      c.append(el('h2', a.operation || (a.method+' '+a.url)));
      const dl=el('dl');
      for(const [k,v] of [['Requester',a.requester],['Actor',a.actor||'-'],['Resource',a.resource||'-'],['Request',a.method+' '+a.url],['Rule',(a.policy?a.policy+'/':'')+a.rule],['Approvers',a.approvers.join(', ')+' (need '+a.min_approvals+')'],['Grant',a.grant+' for '+a.ttl],['Votes',a.votes.map(v=>v.decision+' by '+(v.email||v.approver)+': '+v.reason).join('; ')||'none'],['Expires',a.expires_at],['ID',a.id]]){dl.append(el('dt',k),el('dd',v));}
      c.append(dl);
      if(a.justification) c.append(el('p','Justification (from the requester): '+a.justification));
      if(a.body_excerpt) c.append(el('pre',a.body_excerpt));
      const reason=el('input'); reason.placeholder='reason (required to deny)'; reason.size=50; reason.maxLength=1024;
      const ok=el('button','Approve'), no=el('button','Deny');
      ok.onclick=()=>vote(a.id,'approve',reason.value); no.onclick=()=>vote(a.id,'deny',reason.value);
      c.append(reason,' ',ok,' ',no); list.append(c);
    }
    if(location.hash){const t=document.getElementById(location.hash.slice(1)); if(t) t.scrollIntoView();}
  }catch(e){msg.textContent=e.message;}
}
async function vote(id, verb, reason){
  try{ await api('POST','/v1/approvals/'+encodeURIComponent(id)+':'+verb,{reason}); await load(); }
  catch(e){ msg.textContent=e.message; }
}
document.getElementById('load').onclick=load;
if(tok.value) load();
</script></body></html>
`))
