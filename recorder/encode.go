package recorder

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends e as one JSON line (no newline) to dst: byte for
// byte what encoding/json's Marshal gives for *Event (TestAppendEventMatchesJSON
// holds it to that), without reflection. The hash chain covers these exact
// bytes, so the two must never differ; the reader parses lines with
// encoding/json.
func appendEvent(dst []byte, e *Event) ([]byte, error) {
	if err := checkTime(e); err != nil {
		return dst, err
	}
	dst = appendEventHead(dst, e)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	return appendEventTail(dst, e), nil
}

// checkTime refuses a time outside what RFC 3339 can say, as
// encoding/json does (not passing e to it keeps events off the heap).
func checkTime(e *Event) error {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		_, err := e.Time.MarshalJSON()
		return err
	}
	return nil
}

// appendEventHead is the start of e's line, up to the value of "seq":
// what comes before the number a segment gives its next event.
func appendEventHead(dst []byte, e *Event) []byte {
	dst = append(dst, `{"session":`...)
	dst = appendString(dst, e.Session)
	dst = append(dst, `,"segment":`...)
	dst = appendString(dst, e.Segment)
	return append(dst, `,"seq":`...)
}

// appendEventTail is the rest of e's line after the value of "seq", its
// time checked by checkTime.
func appendEventTail(dst []byte, e *Event) []byte {
	dst = append(dst, `,"time":"`...)
	dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","kind":`...)
	dst = appendString(dst, e.Kind)
	dst = appendOpt(dst, `,"request_id":`, e.RequestID)
	if d := e.Decision; d != nil {
		dst = append(dst, `,"decision":{`...)
		dst = appendDecision(dst, d)
		dst = append(dst, '}')
	}
	if q := e.Request; q != nil {
		dst = append(dst, `,"request":{`...)
		dst = appendRequest(dst, q)
		dst = append(dst, '}')
	}
	if r := e.Response; r != nil {
		dst = append(dst, `,"response":{`...)
		dst = appendResponse(dst, r)
		dst = append(dst, '}')
	}
	if v := e.Vote; v != nil {
		dst = append(dst, `,"vote":{`...)
		dst = appendVote(dst, v)
		dst = append(dst, '}')
	}
	if c := e.ToolCall; c != nil {
		dst = append(dst, `,"tool_call":{`...)
		dst = appendToolCall(dst, c)
		dst = append(dst, '}')
	}
	dst = appendOpt(dst, `,"reason":`, e.Reason)
	if e.LocalSession {
		dst = append(dst, `,"local_session":true`...)
	}
	dst = append(dst, `,"prev":`...)
	dst = appendString(dst, e.Prev)
	return append(dst, '}')
}

// The object appenders write the fields inside the braces. A leading
// comma is trimmed from the first one written, as encoding/json does.

func appendDecision(dst []byte, d *DecisionEvent) []byte {
	start := len(dst)
	dst = appendOpt(dst, `,"request_id":`, d.RequestID)
	dst = appendOpt(dst, `,"subject":`, d.Subject)
	dst = appendOpt(dst, `,"email":`, d.Email)
	dst = appendOpt(dst, `,"actor":`, d.Actor)
	dst = appendOpt(dst, `,"issuer":`, d.Issuer)
	dst = appendOpt(dst, `,"method":`, d.Method)
	dst = appendOpt(dst, `,"host":`, d.Host)
	dst = appendOpt(dst, `,"path":`, d.Path)
	dst = appendOpt(dst, `,"query":`, d.Query)
	dst = appendOpt(dst, `,"gcp_method":`, d.GCPMethod)
	dst = appendOpt(dst, `,"project":`, d.Project)
	dst = appendOpt(dst, `,"resource":`, d.Resource)
	dst = append(dst, `,"decision":`...)
	dst = appendString(dst, d.Decision)
	dst = appendOpt(dst, `,"policy":`, d.Policy)
	dst = appendOpt(dst, `,"rule":`, d.Rule)
	dst = appendStrings(dst, `,"rules":[`, d.Rules)
	dst = appendOpt(dst, `,"message":`, d.Message)
	dst = appendOpt(dst, `,"approval_id":`, d.ApprovalID)
	dst = appendOpt(dst, `,"source":`, d.Source)
	dst = appendOpt(dst, `,"reason":`, d.Reason)
	dst = appendHeaders(dst, d.Headers, d.headers)
	dst = appendOpt(dst, `,"body":`, d.BodyExcerpt)
	dst = appendOptInt(dst, `,"body_bytes":`, d.BodyBytes)
	dst = appendOpt(dst, `,"mode":`, d.Mode)
	return trimComma(dst, start)
}

func appendRequest(dst []byte, q *RequestEvent) []byte {
	start := len(dst)
	dst = appendOpt(dst, `,"subject":`, q.Subject)
	dst = appendOpt(dst, `,"actor":`, q.Actor)
	dst = appendOpt(dst, `,"gcp_method":`, q.GCPMethod)
	dst = appendOpt(dst, `,"decision":`, q.Decision)
	dst = appendStrings(dst, `,"rules":[`, q.Rules)
	dst = appendOpt(dst, `,"method":`, q.Method)
	dst = appendOpt(dst, `,"host":`, q.Host)
	dst = appendOpt(dst, `,"path":`, q.Path)
	dst = appendHeaders(dst, q.Headers, q.headers)
	dst = appendOpt(dst, `,"body":`, q.BodyExcerpt)
	dst = appendOptInt(dst, `,"body_bytes":`, q.BodyBytes)
	return trimComma(dst, start)
}

func appendResponse(dst []byte, r *ResponseEvent) []byte {
	start := len(dst)
	dst = appendOpt(dst, `,"subject":`, r.Subject)
	dst = appendOpt(dst, `,"gcp_method":`, r.GCPMethod)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = appendHeaders(dst, r.Headers, r.headers)
	dst = appendOpt(dst, `,"body":`, r.BodyExcerpt)
	dst = append(dst, `,"total_bytes":`...)
	dst = strconv.AppendInt(dst, r.TotalBytes, 10)
	return trimComma(dst, start)
}

func appendVote(dst []byte, v *VoteEvent) []byte {
	start := len(dst)
	dst = appendOpt(dst, `,"request_id":`, v.RequestID)
	dst = append(dst, `,"approval_id":`...)
	dst = appendString(dst, v.ApprovalID)
	dst = append(dst, `,"approver":`...)
	dst = appendString(dst, v.Approver)
	dst = append(dst, `,"vote":`...)
	dst = appendString(dst, v.Vote)
	dst = appendOpt(dst, `,"reason":`, v.Reason)
	dst = appendOpt(dst, `,"rule":`, v.Rule)
	dst = appendOpt(dst, `,"subject":`, v.Subject)
	dst = appendOpt(dst, `,"state":`, v.State)
	return trimComma(dst, start)
}

func appendToolCall(dst []byte, c *ToolCallEvent) []byte {
	start := len(dst)
	dst = appendOpt(dst, `,"subject":`, c.Subject)
	dst = appendOpt(dst, `,"server":`, c.Server)
	dst = appendOpt(dst, `,"host":`, c.Host)
	dst = append(dst, `,"tool":`...)
	dst = appendString(dst, c.Tool)
	dst = appendOpt(dst, `,"call_id":`, c.CallID)
	dst = appendOpt(dst, `,"gcp_method":`, c.GCPMethod)
	dst = appendOpt(dst, `,"arguments":`, c.Arguments)
	dst = appendOpt(dst, `,"result":`, c.Result)
	dst = appendOptInt(dst, `,"result_bytes":`, c.ResultBytes)
	if c.IsError {
		dst = append(dst, `,"is_error":true`...)
	}
	return trimComma(dst, start)
}

func trimComma(dst []byte, start int) []byte {
	if len(dst) > start && dst[start] == ',' {
		copy(dst[start:], dst[start+1:])
		dst = dst[:len(dst)-1]
	}
	return dst
}

// appendOpt writes key and s unless s is empty (omitempty).
func appendOpt(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

// appendStrings writes key (ending in '[') and a non-empty list
// (omitempty).
func appendStrings(dst []byte, key string, list []string) []byte {
	if len(list) == 0 {
		return dst
	}
	dst = append(dst, key...)
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

func appendOptInt(dst []byte, key string, n int64) []byte {
	if n == 0 {
		return dst
	}
	return strconv.AppendInt(append(dst, key...), n, 10)
}

// appendHeaders writes the recorder's masked header list when there is
// one, else a non-empty map with its keys sorted, as encoding/json does:
// the list is sorted by name with unique names, so both give the bytes
// encoding/json writes for the same headers as a map.
func appendHeaders(dst []byte, h map[string]string, list []header) []byte {
	if len(list) > 0 {
		// Already sorted by name, names unique: what the map would give.
		dst = append(dst, `,"headers":{`...)
		for i, kv := range list {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, kv.name)
			dst = append(dst, ':')
			dst = appendString(dst, kv.value)
		}
		return append(dst, '}')
	}
	if len(h) == 0 {
		return dst
	}
	var buf [16]string
	keys := buf[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, `,"headers":{`...)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, h[k])
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// safeByte marks the ASCII bytes encoding/json writes as they are (it
// escapes control characters, '"', '\\', and '<', '>', '&' for HTML).
var safeByte = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string exactly as encoding/json does:
// HTML characters, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safeByte[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
