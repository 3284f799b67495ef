package gcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Request bodies as Google reads them. Policies may inspect request.body,
// and a guarded rule such as has(request.body.items) is skipped when the
// body is null, so a body that exists must never look absent. readBody
// sorts every body into one of three cases:
//
//   - no body: nil value, nothing unreadable;
//   - a JSON document Google would parse as the request message: the value,
//     parsed as strictly as the strictest reader (a duplicate member name is
//     refused before policy, since Google's parser merges duplicates where
//     Go's keeps the last);
//   - a body that exists but cannot be read as JSON here (cut by Envoy, over
//     the size limit, a media upload, protobuf, another charset, invalid
//     JSON or UTF-8): Unreadable says why, and policies get an error value,
//     so that every use of request.body fails closed, has() included.
//
// A multipart/related media upload's metadata part (its first part, JSON)
// is the body Google reads as the object resource; the media that follows
// is not.

// maxBodyDepth bounds the nesting of a parsed body.
const maxBodyDepth = 256

// readBody parses body for policies. contentType is the effective one ($ct
// applied). limit, when positive, is the largest body parsed. The error is a
// *RequestError refusing the request before policy.
func readBody(path, contentType string, body []byte, partial bool, limit int) (value any, unreadable string, err error) {
	if len(body) == 0 && !partial {
		return nil, "", nil
	}
	if partial {
		return nil, fmt.Sprintf("the body was cut at %d bytes by the gateway (it inspects at most that much)", len(body)), nil
	}
	if limit > 0 && len(body) > limit {
		return nil, fmt.Sprintf("the body is %d bytes, more than the %d the gateway parses", len(body), limit), nil
	}
	mt, params, perr := mime.ParseMediaType(contentType)
	if strings.TrimSpace(contentType) == "" {
		mt, perr = "", nil
	}
	if perr != nil {
		return nil, fmt.Sprintf("its Content-Type %q cannot be parsed", clip(contentType)), nil
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return nil, fmt.Sprintf("its charset is %s, not UTF-8", clip(cs)), nil
	}
	switch {
	case mt == "" || isJSONMediaType(mt):
		return parseStrictJSON(body)
	case mt == "multipart/related" && isUploadPath(path):
		return uploadMetadata(body, params["boundary"])
	}
	return nil, fmt.Sprintf("it is %s, not JSON", clip(mt)), nil
}

func isJSONMediaType(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// uploadMetadata reads the JSON metadata part of a multipart/related upload.
func uploadMetadata(body []byte, boundary string) (any, string, error) {
	if boundary == "" {
		return nil, "it is multipart/related without a boundary", nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	p, err := mr.NextRawPart()
	if err != nil {
		return nil, "its multipart/related body cannot be parsed", nil
	}
	mt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
	if err != nil || !isJSONMediaType(mt) {
		return nil, "the first part of its multipart/related body is not JSON metadata", nil
	}
	meta, err := io.ReadAll(p)
	if err != nil {
		return nil, "its multipart/related body cannot be parsed", nil
	}
	return parseStrictJSON(meta)
}

// utf8BOM may precede a JSON text; RFC 8259 lets parsers ignore it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseStrictJSON parses one JSON text into the values encoding/json
// produces (map[string]any, []any, float64, string, bool, nil). It refuses
// what two parsers could read differently: a duplicate member name (a
// *RequestError), and reports as unreadable invalid UTF-8, an unpaired
// surrogate escape, trailing data and nesting deeper than maxBodyDepth.
func parseStrictJSON(b []byte) (any, string, error) {
	b = bytes.TrimPrefix(b, utf8BOM)
	if !utf8.Valid(b) {
		return nil, "it is not valid UTF-8", nil
	}
	if why := checkSurrogates(b); why != "" {
		return nil, why, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return nil, "", err
		}
		return nil, "it is not valid JSON (" + clip(err.Error()) + ")", nil
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "it is not valid JSON (data after the first value)", nil
	}
	return v, "", nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxBodyDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxBodyDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("an object key is not a string")
				}
				if _, dup := obj[key]; dup {
					return nil, refusef("the JSON body names the member %q twice in one object; Google's parser and the gateway's could read that differently, so send each member once", clip(key))
				}
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj[key] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		}
		return nil, fmt.Errorf("unexpected %q", rune(t))
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, fmt.Errorf("the number %s is out of range", clip(string(t)))
		}
		return f, nil
	default:
		return t, nil // string, bool or nil
	}
}

// checkSurrogates reports a \u escape of a UTF-16 surrogate that is not
// part of a high-low pair: encoding/json reads it as U+FFFD, another parser
// may refuse it or keep it.
func checkSurrogates(b []byte) string {
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			i++ // an escaped character, possibly a backslash
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			continue // the parser reports it
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex4(b, i+8)
			if !ok || i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' || lo < 0xDC00 || lo > 0xDFFF {
				return "it has an unpaired UTF-16 surrogate escape"
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return "it has an unpaired UTF-16 surrogate escape"
		default:
			i += 5
		}
	}
	return ""
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		v, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
