package gcp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strings"
)

// MaxBatchParts is the most parts a batch request may carry. Google's own
// limits are 100 (Cloud Storage and most APIs) and 1000 (Compute Engine);
// airlock takes the larger, and refuses a batch above it.
const MaxBatchParts = 1000

// batch parses a multipart/mixed batch body and recognises each part. The
// body must be complete: a batch is evaluated part by part or refused.
func (r *Recognizer) batch(host, contentType string, req Request) ([]Recognized, error) {
	if req.BodyPartial {
		return nil, refusef("the batch request body is larger than the gateway inspects; send fewer requests per batch")
	}
	if len(req.Body) == 0 {
		return nil, refusef("the batch request has no body to inspect; a batch must carry its requests in a multipart/mixed body")
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, refusef("a batch request needs Content-Type multipart/mixed with a boundary, got %q", clip(contentType))
	}
	mr := multipart.NewReader(bytes.NewReader(req.Body), params["boundary"])
	parts := []Recognized{}
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, refusef("the batch body cannot be parsed after %d parts: %v", len(parts), err)
		}
		if len(parts) == MaxBatchParts {
			return nil, refusef("the batch request has more than %d parts; split it", MaxBatchParts)
		}
		pct := p.Header.Get("Content-Type")
		if pmt, _, err := mime.ParseMediaType(pct); err != nil || pmt != "application/http" {
			return nil, refusef("batch part %d has Content-Type %q; every part must be application/http", len(parts)+1, clip(pct))
		}
		if enc := strings.ToLower(p.Header.Get("Content-Transfer-Encoding")); enc != "" && enc != "binary" && enc != "8bit" && enc != "7bit" {
			return nil, refusef("batch part %d has Content-Transfer-Encoding %q; send it as binary", len(parts)+1, enc)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			return nil, refusef("batch part %d cannot be read: %v", len(parts)+1, err)
		}
		inner, err := parseInnerRequest(body, host)
		if err != nil {
			return nil, refusef("batch part %d: %s", len(parts)+1, refusalText(err))
		}
		if err := checkPartCredentials(inner); err != nil {
			return nil, refusef("batch part %d %s", len(parts)+1, refusalText(err))
		}
		if _, ok := inner.Headers["range"]; ok {
			// The gateway removes Range from requests it forwards; it cannot
			// remove one inside a batch body.
			return nil, refusef("batch part %d carries a Range header; ranges are not served through the gateway, so send the request whole and outside a batch", len(parts)+1)
		}
		if h := inner.Headers["host"]; h != "" {
			hh, herr := r.normalizeHost(h)
			ph, perr := r.normalizeHost(inner.Host)
			if herr != nil || perr != nil || hh != ph {
				return nil, refusef("batch part %d: its Host header %q differs from the host it is sent to (%q)", len(parts)+1, clip(h), clip(inner.Host))
			}
		}
		rec, err := r.recognize(inner, true)
		if err != nil {
			return nil, refusef("batch part %d: %s", len(parts)+1, refusalText(err))
		}
		rec.Headers, rec.Body = inner.Headers, inner.Body
		parts = append(parts, rec)
	}
	if len(parts) == 0 {
		return nil, refusef("the batch request has no parts")
	}
	return parts, nil
}

// parseInnerRequest reads "METHOD TARGET [HTTP/1.1]", headers and a body.
// A relative target is sent to the batch host; an absolute URL names its
// own host. An inner Host header must agree with that host.
func parseInnerRequest(b []byte, batchHost string) (Request, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	tr := textproto.NewReader(br)
	var line string
	for {
		l, err := tr.ReadLine()
		if err != nil {
			return Request{}, refusef("no request line")
		}
		if strings.TrimSpace(l) != "" {
			line = l
			break
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || len(fields) > 3 || (len(fields) == 3 && !strings.HasPrefix(fields[2], "HTTP/")) {
		return Request{}, refusef("the request line %q is not \"METHOD PATH HTTP/1.1\"", clip(line))
	}
	req := Request{Method: fields[0], Host: batchHost, Path: fields[1], Headers: map[string]string{}}
	if !strings.HasPrefix(req.Path, "/") {
		u, err := url.Parse(req.Path)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return Request{}, refusef("the request target %q is neither a path nor an http(s) URL", clip(req.Path))
		}
		// Keep the path bytes as sent: everything from the first "/" after
		// the authority.
		rest := req.Path[strings.Index(req.Path, "://")+3:]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return Request{}, refusef("the request target %q has no path", clip(req.Path))
		}
		req.Host = u.Host
		req.Path = rest[slash:]
	}
	hdr, err := tr.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return Request{}, refusef("the headers cannot be parsed: %v", err)
	}
	for k, v := range hdr {
		if len(v) > 1 {
			return Request{}, refusef("the header %s is given %d times", k, len(v))
		}
		req.Headers[strings.ToLower(k)] = v[0]
	}
	rest, _ := io.ReadAll(br)
	req.Body = rest
	return req, nil
}

// refusalText is the agent-facing text of a refusal.
func refusalText(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Msg
	}
	return err.Error()
}

// partCredentialHeaders are headers by which a batch part could carry its
// own credential: Google acts on a part's Authorization instead of the
// batch's, so a part could use a token the gateway never sees injected
// (or leak the agent's own), and the gateway removes credentials only from
// the outer request.
var partCredentialHeaders = [...]string{"authorization", "proxy-authorization", "cookie", "x-goog-iap-jwt-assertion"}

// checkPartCredentials refuses a batch part that carries a credential.
func checkPartCredentials(inner Request) error {
	for _, h := range partCredentialHeaders {
		if _, ok := inner.Headers[h]; ok {
			return refusef("carries its own %s header; the gateway injects the credential for the whole batch, so remove it from the part", h)
		}
	}
	_, rawQuery, _ := strings.Cut(inner.Path, "?")
	if rawQuery == "" {
		return nil
	}
	q, err := ParseQuery(rawQuery)
	if err != nil {
		return nil // the part's recognition refuses it
	}
	for _, name := range credentialParams {
		for _, k := range []string{name, "$" + name} {
			if _, ok := q[k]; ok {
				return refusef("carries a credential in its %s query parameter; the gateway injects the credential for the whole batch, so remove it from the part", k)
			}
		}
	}
	return nil
}
