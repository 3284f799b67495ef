package identity_test

import (
	"context"
	"testing"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
)

func benchToken(b *testing.B, cacheSize int) (*identity.OIDCVerifier, string) {
	iss := identitytest.NewIssuer(b)
	v := newVerifier(b, identity.Options{CacheSize: cacheSize}, iss.Config("airlock", "groups"))
	tok := iss.Mint(map[string]any{
		"sub": "alice", "email": "alice@example.com",
		"groups": []string{"ai-agents", "sre"}, "act": map[string]any{"sub": "agent-1"},
	})
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	return v, tok
}

// BenchmarkVerifyCached is the steady state: an agent presenting the same
// token on every request.
func BenchmarkVerifyCached(b *testing.B) {
	v, tok := benchToken(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel is the cached path under contention.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	v, tok := benchToken(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyUncached is a full verification (RS256, 2048-bit key).
func BenchmarkVerifyUncached(b *testing.B) {
	v, tok := benchToken(b, -1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
