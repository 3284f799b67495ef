package approvals_test

import (
	"context"
	"testing"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/approvals/storetest"
	"github.com/airlockhq/airlock/redistest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{New: func(t *testing.T) approvals.Store { return approvals.NewMemoryStore() }})
}

func newRedisStore(t *testing.T, url string) *approvals.RedisStore {
	t.Helper()
	s, err := approvals.NewRedisStore(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedisStoreConformance(t *testing.T) {
	urls := map[approvals.Store]string{}
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) approvals.Store {
			u := redistest.Start(t).URL()
			s := newRedisStore(t, u)
			urls[s] = u
			return s
		},
		Replica: func(t *testing.T, s approvals.Store) approvals.Store { return newRedisStore(t, urls[s]) },
	})
}
