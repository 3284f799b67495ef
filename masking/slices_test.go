package masking

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

func pemKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// A key whose head was sliced away (a download from an offset, serial
// output from a position) is still found, by its END line.
func TestKeyWithoutItsHead(t *testing.T) {
	e := testEngine(t)
	key := pemKey(t)
	body := key[strings.Index(key, "\n")+1:] // from the first line of the body
	lines := strings.Split(strings.TrimSpace(body), "\n")
	for name, text := range map[string]string{
		"from the second line": body,
		"from inside a line":   key[40:],
		"from the last lines":  strings.Join(lines[len(lines)-4:], "\n") + "\n",
		"after other text":     "boot log line\nstarting service\n" + key[200:],
		"without line breaks":  strings.ReplaceAll(key[100:], "\n", ""),
		"crlf":                 strings.ReplaceAll(key[100:], "\n", "\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := e.Mask(DefaultProfile(), Text, []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), "[MASKED:private_key]") || strings.Contains(string(out), "END PRIVATE KEY") {
				t.Fatalf("not masked:\n%s", out)
			}
			// No 16-character run of the key body survives.
			for _, l := range lines[:len(lines)-1] {
				for i := 0; i+16 <= len(l); i += 16 {
					if strings.Contains(string(out), l[i:i+16]) && strings.Contains(text, l[i:i+16]) {
						t.Fatalf("a slice of the key survived: %q", l[i:i+16])
					}
				}
			}
		})
	}
	// In a JSON string (serial port output), escaped line breaks.
	js, _ := json.Marshal(map[string]string{"contents": "kernel: ready\n" + key[120:]})
	out, err := e.Mask(DefaultProfile(), JSON, js)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "[MASKED:private_key]") || strings.Contains(string(out), "END PRIVATE KEY") {
		t.Fatalf("JSON not masked:\n%s", out)
	}
	// A mention of the END line with no key before it is left alone.
	mention := "the file ends with -----END PRIVATE KEY----- as usual"
	if out, _ := e.Mask(DefaultProfile(), Text, []byte(mention)); string(out) != mention {
		t.Fatalf("a mention was masked: %s", out)
	}
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Secrets that a text holds only encoded: base64 values in a manifest,
// base64 inside base64, UTF-16 text.
func TestEncodedSecretsInText(t *testing.T) {
	e := testEngine(t)
	const apiKey = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
	key := pemKey(t)
	manifest := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ndata:\n  api-key: " + b64s(apiKey+"\n") +
		"\n  tls.key: " + b64s(key) + "\n  note: " + b64s("just a note, nothing secret here at all") + "\n"
	cases := map[string]struct {
		kind  Kind
		body  string
		leaks []string
	}{
		"kubernetes secret manifest": {Text, manifest, []string{b64s(apiKey + "\n"), b64s(key)[:64]}},
		"base64 inside base64":       {Text, "PAYLOAD=" + b64s(manifest) + "\n", []string{b64s(manifest)[:64]}},
		"env value, base64 twice":    {Text, "TOKEN=" + b64s(b64s(apiKey)) + "\n", []string{b64s(b64s(apiKey))}},
		"url alphabet":               {Text, "k=" + base64.RawURLEncoding.EncodeToString([]byte("key: "+apiKey)) + ";", []string{"NTX"}},
		"mime line breaks":           {Text, "-----\n" + wrap(b64s(key), 76) + "-----\n", []string{wrap(b64s(key), 76)[200:260]}},
		"secret manager payload":     {JSON, `{"payload":{"data":"` + b64s(manifest) + `"}}`, []string{b64s(manifest)[:64]}},
		"manifest in a json string":  {JSON, `{"contents":` + jsonString(manifest) + `}`, []string{b64s(apiKey + "\n")}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := e.Mask(DefaultProfile(), c.kind, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if !hasLabel(out) {
				t.Fatalf("nothing masked:\n%.400s", out)
			}
			for _, l := range c.leaks {
				if l != "NTX" && strings.Contains(string(out), l) {
					t.Fatalf("the encoded secret passed: %.80s", l)
				}
			}
			if strings.Contains(string(out), apiKey) {
				t.Fatal("the key passed in clear")
			}
		})
	}
	// Plain base64 that decodes to nothing secret stays as it is.
	clean := "checksum: " + b64s("the quick brown fox jumps over the lazy dog") + "\nid: 4f1c2e0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e\n"
	if out, _ := e.Mask(DefaultProfile(), Text, []byte(clean)); string(out) != clean {
		t.Fatalf("clean base64 changed:\n%s", out)
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	return b.String() + s + "\n"
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A base64 run longer than the stream's buffer is decoded as it goes out:
// a secret near its end is masked with the run's tail, or, when the tail
// in the buffer does not decode on its own, ends the stream before the
// bytes that hold it. Either way the encoded key never goes out.
func TestLongBase64RunWithSecretFailsClosed(t *testing.T) {
	e := testEngine(t)
	filler := strings.Repeat("plain text of a large attachment, nothing to see. ", 4000)
	run := b64s(filler + "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
	body := []byte("attachment: " + run + "\n")
	tail := run[len(run)-60:]
	outcomes := map[string]int{}
	for chunk := 4093; chunk <= 4100; chunk++ {
		s, err := e.NewStream(DefaultProfile(), Text)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for i := 0; i < len(body) && err == nil; i += chunk {
			out, err = s.Write(out, body[i:min(i+chunk, len(body))])
		}
		if err == nil {
			out, err = s.Close(out)
		}
		switch {
		case strings.Contains(string(out), tail):
			t.Fatalf("chunk %d: the encoded key went out", chunk)
		case errors.Is(err, ErrUnmaskable):
			outcomes["refused"]++
		case err == nil && strings.Contains(string(out), "[MASKED:"):
			outcomes["masked"]++
		default:
			t.Fatalf("chunk %d: err %v, %d of %d bytes out, nothing masked", chunk, err, len(out), len(body))
		}
	}
	if outcomes["refused"] == 0 {
		t.Errorf("no chunking ended the stream: %v (the progressive decoder was not exercised)", outcomes)
	}
}

// UTF-16 text is read as text and stays UTF-16.
func TestUTF16Text(t *testing.T) {
	e := testEngine(t)
	const apiKey = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
	script := "# deploy.ps1\r\n$apiKey = \"" + apiKey + "\"\r\nWrite-Host \"déployé ✓\"\r\n"
	for name, enc := range map[string]func(string) []byte{
		"little endian with BOM": func(s string) []byte { return encodeUTF16(s, false, true) },
		"little endian, no BOM":  func(s string) []byte { return encodeUTF16(s, false, false) },
		"big endian with BOM":    func(s string) []byte { return encodeUTF16(s, true, true) },
	} {
		t.Run(name, func(t *testing.T) {
			in := enc(script)
			s, err := e.NewStream(DefaultProfile(), Text)
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			for i := 0; i < len(in); i += 7 { // odd chunks: code units split
				if out, err = s.Write(out, in[i:min(i+7, len(in))]); err != nil {
					t.Fatal(err)
				}
			}
			if out, err = s.Close(out); err != nil {
				t.Fatal(err)
			}
			// Still UTF-16 in the same byte order, the key masked, the
			// rest (accents, symbols) as it was.
			if !bytes.Equal(out[:len(enc("# deploy.ps1"))], enc("# deploy.ps1")) {
				t.Fatalf("not the same encoding: %q", out[:16])
			}
			got := decodeUTF16(t, out, strings.HasPrefix(name, "big"))
			if strings.Contains(got, apiKey) || !strings.Contains(got, "[MASKED:") || !strings.HasSuffix(got, "Write-Host \"déployé ✓\"\r\n") {
				t.Fatalf("decoded output %q", got)
			}
		})
	}
}

func encodeUTF16(s string, be, bom bool) []byte {
	var units []uint16
	if bom {
		units = append(units, 0xFEFF)
	}
	units = append(units, utf16.Encode([]rune(s))...)
	var b []byte
	for _, u := range units {
		if be {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

func decodeUTF16(t *testing.T, b []byte, be bool) string {
	t.Helper()
	if len(b)%2 != 0 {
		t.Fatalf("odd length %d", len(b))
	}
	var units []uint16
	for i := 0; i < len(b); i += 2 {
		if be {
			units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			units = append(units, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	if len(units) > 0 && units[0] == 0xFEFF {
		units = units[1:]
	}
	return string(utf16.Decode(units))
}

// A masked bytes member (base64 in JSON) keeps a base64 label, so that a
// client that decodes it (gcloud secrets versions access, the client
// libraries) reads "[MASKED:...]" instead of failing on the field.
func TestMaskedBytesMembersStayBase64(t *testing.T) {
	e := testEngine(t)
	secret := `{"name":"projects/1/secrets/db/versions/3","payload":{"data":"` + b64s("hunter2-is-the-db-password") + `","dataCrc32c":"1"}}`
	p := DefaultProfile()
	p.Fields = append(p.Fields, Field{Path: "payload.data", Label: "secret-payloads"})
	out, err := e.Mask(p, JSON, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Payload struct{ Data []byte } `json:"payload"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("the masked field no longer decodes as bytes: %v\n%s", err, out)
	}
	if string(got.Payload.Data) != "[MASKED:secret-payloads]" {
		t.Fatalf("data decodes to %q", got.Payload.Data)
	}
	key := `{"name":"k","privateKeyData":"` + b64s(`{"type":"service_account","private_key":"`+strings.ReplaceAll(pemKey(t), "\n", `\n`)+`"}`) + `"}`
	out, err = e.Mask(DefaultProfile(), JSON, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ PrivateKeyData []byte }
	if err := json.Unmarshal(out, &k); err != nil || !strings.HasPrefix(string(k.PrivateKeyData), "[MASKED:") {
		t.Fatalf("privateKeyData: %v %s", err, out)
	}
	// Text members keep the readable label.
	out, _ = e.Mask(DefaultProfile(), JSON, []byte(`{"password":"correcthorsebatterystaple12=="}`))
	if !strings.Contains(string(out), `"[MASKED:`) {
		t.Fatalf("a password got a base64 label: %s", out)
	}
}
