package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/airlockhq/airlock/recorder"
)

// healthCheck is one component's health, reported on /healthz.
type healthCheck struct {
	name  string
	check func(ctx context.Context) error
}

// healthz reports every component: "ok" (200); "degraded" (200) when only
// a shared dependency fails (Redis: approve rules answer 503, allow and
// deny go on), naming it; "unhealthy" (503) when this replica cannot do its
// work.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := map[string]string{}
	run := func(checks []healthCheck) (failed []string) {
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				out[c.name] = err.Error()
				failed = append(failed, c.name)
			} else {
				out[c.name] = "ok"
			}
		}
		return failed
	}
	unhealthy := run(s.checks)
	degraded := run(s.sharedChecks)
	body := map[string]any{"status": "ok", "checks": out}
	code := http.StatusOK
	switch {
	case len(unhealthy) > 0:
		body["status"], code = "unhealthy", http.StatusServiceUnavailable
	case len(degraded) > 0:
		body["status"] = "degraded"
		body["degraded_by"] = degraded
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// redisHealth is Redis's entry on /healthz: what is down and what that
// stops.
func redisHealth(ping error, st recorder.FallbackStatus) error {
	switch {
	case ping != nil:
		return fmt.Errorf("redis (approvals.store) cannot be reached: %v; approve rules answer 503 UNAVAILABLE, allow and deny go on, and sessions are tracked on this replica alone (events marked local_session)", ping)
	case st.Down:
		return fmt.Errorf("redis (approvals.store) answers again; sessions are tracked on this replica alone (events marked local_session) until the next retry; last error: %v", st.Err)
	}
	return nil
}
