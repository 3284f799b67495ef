package approvals

import (
	"context"
	"time"
)

// Wait returns the approval id once it is no longer pending, or as it
// stands when wait has passed or ctx ends: woken by the store's decision
// feed (any replica), and re-reading the store every second since that
// feed is best effort. The state returned is the effective one at now.
func (s *Service) Wait(ctx context.Context, id string, wait time.Duration) (Approval, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		ch, stop := s.watch(id)
		a, err := s.Get(ctx, id)
		if err != nil || a.State != StatePending {
			stop()
			return a, err
		}
		tick := time.NewTimer(time.Second)
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			stop()
			tick.Stop()
			return a, nil
		case <-ctx.Done():
			stop()
			tick.Stop()
			return a, nil
		}
		stop()
		tick.Stop()
	}
}
