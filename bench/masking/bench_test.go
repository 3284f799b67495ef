// Package masking compares airlock's masker with hoop's alcatraz and
// gitleaks' detector on the same generated 1 MiB corpus of GCP-shaped JSON.
// It is a separate module so that neither competitor enters airlock's
// dependencies. Run: cd bench/masking && go test -bench . -benchtime 3x
package masking

import (
	"sync"
	"testing"

	"github.com/hoophq/alcatraz"
	"github.com/zricethezav/gitleaks/v8/detect"

	airlock "github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/masking/maskingtest"
)

var (
	corpusOnce sync.Once
	corpus     []byte
)

// Corpus is about 1 MiB of instance-list JSON (startup scripts,
// fingerprints, self links, service-account addresses) with 9 API keys and
// 9 e-mail addresses planted.
func Corpus() []byte {
	corpusOnce.Do(func() { corpus = maskingtest.InstanceList(1<<20, 9) })
	return corpus
}

func BenchmarkAirlockJSON(b *testing.B) {
	e, err := airlock.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	body := Corpus()
	p := airlock.Profile{Detectors: []string{airlock.GroupAll}}
	b.SetBytes(int64(len(body)))
	hits := 0
	out := make([]byte, 0, len(body)+4096)
	for b.Loop() {
		s, err := e.NewStream(p, airlock.JSON)
		if err != nil {
			b.Fatal(err)
		}
		out = out[:0]
		for off := 0; off < len(body); off += 64 << 10 {
			if out, err = s.Write(out, body[off:min(off+64<<10, len(body))]); err != nil {
				b.Fatal(err)
			}
		}
		if out, err = s.Close(out); err != nil {
			b.Fatal(err)
		}
		hits = s.Masked()
	}
	b.ReportMetric(float64(hits), "hits")
}

func BenchmarkAirlockText(b *testing.B) {
	e, err := airlock.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	body := Corpus()
	p := airlock.Profile{Detectors: []string{airlock.GroupAll}}
	b.SetBytes(int64(len(body)))
	hits := 0
	for b.Loop() {
		s, err := e.NewStream(p, airlock.Text)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := s.Write(nil, body)
		if _, err = s.Close(out); err != nil {
			b.Fatal(err)
		}
		hits = s.Masked()
	}
	b.ReportMetric(float64(hits), "hits")
}

func benchAlcatraz(b *testing.B, threshold *float64) {
	eng := alcatraz.NewEngine()
	text := string(Corpus())
	b.SetBytes(int64(len(text)))
	hits := 0
	for b.Loop() {
		hits = len(eng.Analyze(text, alcatraz.Options{Threshold: threshold}))
	}
	b.ReportMetric(float64(hits), "hits")
}

func BenchmarkAlcatraz(b *testing.B) { benchAlcatraz(b, nil) }

func BenchmarkAlcatrazThreshold04(b *testing.B) {
	t := 0.4
	benchAlcatraz(b, &t)
}

func BenchmarkGitleaks(b *testing.B) {
	d, err := detect.NewDetectorDefaultConfig()
	if err != nil {
		b.Fatal(err)
	}
	text := string(Corpus())
	b.SetBytes(int64(len(text)))
	hits := 0
	for b.Loop() {
		hits = len(d.DetectString(text))
	}
	b.ReportMetric(float64(hits), "hits")
}
