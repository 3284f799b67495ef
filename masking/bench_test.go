package masking

import (
	"bytes"
	"testing"

	"github.com/airlockhq/airlock/masking/maskingtest"
	"github.com/airlockhq/airlock/test/cputime"
)

// benchCorpus is the instance list every masking benchmark measures.
func benchCorpus(n int) []byte { return maskingtest.InstanceList(n, 0) }

func benchMask(b *testing.B, p Profile, kind Kind, body []byte, chunk int) {
	e := testEngine(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	out := make([]byte, 0, len(body)+4096)
	hits := 0
	cpu0 := cputime.Process()
	for b.Loop() {
		s, err := e.NewStream(p, kind)
		if err != nil {
			b.Fatal(err)
		}
		out = out[:0]
		for off := 0; off < len(body); off += chunk {
			if out, err = s.Write(out, body[off:min(off+chunk, len(body))]); err != nil {
				b.Fatal(err)
			}
		}
		if out, err = s.Close(out); err != nil {
			b.Fatal(err)
		}
		hits = s.Masked()
	}
	b.ReportMetric(float64(hits), "hits")
	// Throughput per core from the CPU time used, which stays meaningful
	// on a loaded machine where wall time does not.
	if d := cputime.Process() - cpu0; d > 0 {
		b.ReportMetric(float64(len(body))*float64(b.N)/d.Seconds()/1e6, "cpuMB/s")
	}
}

// BenchmarkMask1MiB masks 1 MiB of JSON with every detector on.
func BenchmarkMask1MiB(b *testing.B) {
	benchMask(b, Profile{Detectors: []string{GroupAll}}, JSON, benchCorpus(1<<20), 64<<10)
}

// BenchmarkMask1MiBDefault masks 1 MiB of JSON with the default profile.
func BenchmarkMask1MiBDefault(b *testing.B) {
	benchMask(b, DefaultProfile(), JSON, benchCorpus(1<<20), 64<<10)
}

// BenchmarkMaskInstanceList64K masks the ext_proc benchmark body with the
// default profile, fed in 64 KiB writes as STREAMED chunks arrive.
func BenchmarkMaskInstanceList64K(b *testing.B) {
	benchMask(b, DefaultProfile(), JSON, maskingtest.StreamedInstanceList(), 64<<10)
}

// BenchmarkMaskJSONLexer masks the same JSON with no rule: what the JSON
// lexer costs on its own.
func BenchmarkMaskJSONLexer(b *testing.B) {
	benchMask(b, Profile{}, JSON, benchCorpus(1<<20), 64<<10)
}

// BenchmarkMaskText1MiB scans the same bytes as text (object downloads).
func BenchmarkMaskText1MiB(b *testing.B) {
	benchMask(b, Profile{Detectors: []string{GroupAll}}, Text, benchCorpus(1<<20), 64<<10)
}

// BenchmarkPrefilter measures the Aho-Corasick pass alone.
func BenchmarkPrefilter(b *testing.B) {
	e := testEngine(b)
	body := benchCorpus(1 << 20)
	b.SetBytes(int64(len(body)))
	n := 0
	for b.Loop() {
		e.ac.scan(body, func(int32, int) { n++ })
	}
	_ = bytes.MinRead
}
