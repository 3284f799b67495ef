package policies

import (
	"context"
	"fmt"

	"github.com/google/cel-go/common/types"
)

// truth is the value of an expression when some variables are unknown.
type truth int

const (
	isFalse truth = iota
	isTrue
	isUnknown
	isError
)

// eval3 evaluates an expression that may read unknown variables.
func (e *expr) eval3(a *activation) truth {
	out, _, err := e.prg.Eval(a)
	if err != nil {
		return isError
	}
	if types.IsUnknown(out) {
		return isUnknown
	}
	b, ok := out.(types.Bool)
	if !ok {
		return isError
	}
	if b {
		return isTrue
	}
	return isFalse
}

// MayAllow reports whether a request could be allowed (or held for
// approval) for some values of the variables named in unknown: false only
// when every such request is denied, whatever those values. It errs on
// the side of true: the unknowns are treated as independent, so a
// combination no value satisfies may still count as possible. A variable
// name that Variables does not hold is an error.
//
// A policy certainly denies when its match holds and either a deny rule
// holds (or fails to evaluate: deny and approve rules count as matched on
// an error) or its default is deny and no approve or allow rule can hold.
// The request is certainly denied when one applicable policy certainly
// denies, or when no policy can apply.
func (s *Set) MayAllow(ctx context.Context, in Input, unknown []string) (bool, error) {
	var mask uint64
	for _, name := range unknown {
		slot := slotOf(name)
		if slot < 0 {
			return false, fmt.Errorf("policies: unknown variable %q", name)
		}
		mask |= 1 << slot
	}
	if s == nil {
		return false, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	a := newActivation(ctx, &in)
	defer a.release()
	a.unknown = mask
	mayApply := false
	for _, p := range s.policies {
		m := isTrue
		if p.match != nil {
			m = p.match.eval3(a)
		}
		if m == isFalse {
			continue
		}
		mayApply = true
		if m == isUnknown {
			continue
		}
		if p.certainlyDenies(a) {
			return false, nil
		}
	}
	return mayApply && ctx.Err() == nil, nil
}

// certainlyDenies reports whether an applicable policy denies whatever
// the unknown variables hold.
func (p *policy) certainlyDenies(a *activation) bool {
	mayOther := false
	for _, r := range p.rules {
		if r.when == nil {
			continue
		}
		v := r.when.eval3(a)
		switch r.action {
		case Deny:
			if v == isTrue || v == isError {
				return true
			}
		case Approve:
			if v != isFalse {
				mayOther = true
			}
		case Allow:
			if v == isTrue || v == isUnknown {
				mayOther = true
			}
		}
	}
	return p.def == Deny && !mayOther
}
