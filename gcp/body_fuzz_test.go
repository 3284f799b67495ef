package gcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseStrictJSON holds the strict parser to encoding/json: whatever
// it reads, encoding/json reads the same; whatever encoding/json rejects,
// it does not read; and a refusal is always a duplicate member.
func FuzzParseStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `[1,2.5e3,-0,"x\u00e9",true,false,null]`, `{"a":{"a":{"a":[]}}}`,
		`{"a":1,"a":2}`, `"\ud83d\ude00"`, `"\ud800"`, `{"k":"\\"}`, `01`, `1.`, `{"a" 1}`, "\uFEFF{}", ` [ ] `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, why, err := parseStrictJSON(in)
		body := bytes.TrimPrefix(in, utf8BOM)
		var want any
		stdErr := json.Unmarshal(body, &want)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || !bytes.Contains([]byte(re.Msg), []byte("twice")) {
				t.Fatalf("refusal is not a duplicate member: %v", err)
			}
			return
		}
		if why != "" {
			return // unreadable: fails closed whatever encoding/json thinks
		}
		if stdErr != nil {
			t.Fatalf("read %q, which encoding/json rejects: %v", in, stdErr)
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("read %#v, encoding/json reads %#v", v, want)
		}
	})
}
