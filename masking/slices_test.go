package masking

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
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
