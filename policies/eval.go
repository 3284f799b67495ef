package policies

import (
	"context"
	"fmt"
)

// msgNoPolicy is the message when no policy's match holds.
const msgNoPolicy = "no policy applies to this request"

// Evaluate decides a request. It fails closed: no applicable policy, a rule
// that cannot be evaluated or a context that ended gives Deny. It stops
// evaluating rules once the decision cannot change, so Matches lists only the
// rules it evaluated that matched; use Explain for every match.
//
// The returned Decision shares its Approval and Masking field slices with
// the set: callers must not modify them.
func (s *Set) Evaluate(ctx context.Context, in Input) Decision {
	return s.each(ctx, &in, func(p *policy, a *activation, dv Decision) Decision {
		d := &dv
		if d.Action == Deny {
			return dv
		}
		if r, errText, ok := p.firstMatch(a, 0, &a.in, d); ok {
			d.setRule(r, errText)
			return dv
		}
		// No deny rule matched: the policy gives approve (an approve rule
		// matched), allow (an allow rule matched) or its default.
		if d.Action >= Approve && p.def != Deny {
			return dv
		}
		if r, errText, ok := p.firstMatch(a, 1, &a.in, d); ok {
			if d.Action < Approve {
				d.setRule(r, errText)
			}
			return dv
		}
		if d.Action >= Allow && p.def <= d.Action {
			return dv
		}
		if r, errText, ok := p.firstMatch(a, 2, &a.in, d); ok {
			if d.Action < Allow {
				d.setRule(r, errText)
			}
			return dv
		}
		d.Matches = append(d.Matches, Match{Policy: p.name, Action: p.def})
		if p.def > d.Action {
			d.setDefault(p)
		}
		return dv
	})
}

// Explain decides a request like Evaluate but evaluates every rule of every
// applicable policy, so Matches lists all matched rules (and the defaults
// that applied) in file order. An allow rule that failed to evaluate is
// listed with its Error although it did not count.
func (s *Set) Explain(ctx context.Context, in Input) Decision {
	return s.each(ctx, &in, func(p *policy, a *activation, dv Decision) Decision {
		d := &dv
		var best *rule
		var bestErr string
		for _, r := range p.rules {
			if r.when == nil {
				continue
			}
			ok, err := r.when.eval(a)
			errText := ""
			if err != nil {
				errText = err.Error()
				ok = r.action != Allow
			}
			if ok || err != nil {
				d.Matches = append(d.Matches, Match{Policy: p.name, Rule: r.name, Action: r.action, Error: errText})
			}
			if ok && (best == nil || r.action > best.action) {
				best, bestErr = r, errText
			}
		}
		switch {
		case best == nil:
			d.Matches = append(d.Matches, Match{Policy: p.name, Action: p.def})
			if p.def > d.Action {
				d.setDefault(p)
			}
		case best.action > d.Action:
			d.setRule(best, bestErr)
		}
		return dv
	})
}

// each runs decide for every policy that applies to in, in file order,
// after collecting its masking entries; it fails closed when none applies.
func (s *Set) each(ctx context.Context, in *Input, decide func(p *policy, a *activation, d Decision) Decision) Decision {
	if s == nil {
		return finish(ctx, Decision{}, false)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	a := newActivation(ctx, in)
	defer a.release()
	var d Decision
	applied := false
	for _, p := range s.policies {
		if !p.applies(a) {
			continue
		}
		applied = true
		d.Masking = p.appendMasking(a, d.Masking)
		d = decide(p, a, d)
	}
	d.Unavailable = a.lookupErr
	return finish(ctx, d, applied)
}

func finish(ctx context.Context, d Decision, applied bool) Decision {
	if ctx == nil {
		ctx = context.Background()
	}
	if !applied {
		d.Action, d.Policy, d.Rule, d.Message, d.Approval = Deny, "", "", msgNoPolicy, nil
	}
	if err := ctx.Err(); err != nil {
		d.Action, d.Policy, d.Rule, d.Approval = Deny, "", "", nil
		d.Message = fmt.Sprintf("policy evaluation did not finish before the request ended (%v); denied to fail closed", err)
	}
	return d
}

func (d *Decision) setRule(r *rule, errText string) {
	d.Action, d.Policy, d.Rule, d.Approval = r.action, r.policy, r.name, r.approval
	d.Message = r.decisionMessage()
	if errText != "" {
		d.Message = fmt.Sprintf("%s (the rule could not be evaluated: %s; it counts as matched to fail closed)", d.Message, errText)
	}
}

func (d *Decision) setDefault(p *policy) {
	d.Action, d.Policy, d.Rule, d.Message, d.Approval = p.def, p.name, "", p.defMsg, p.approval
}

// applies evaluates the policy's match; an error counts as a match.
func (p *policy) applies(a *activation) bool {
	if p.match == nil {
		return true
	}
	ok, err := p.match.eval(a)
	return ok || err != nil
}

// appendMasking adds the masking entries whose when holds (or fails).
func (p *policy) appendMasking(a *activation, out []MaskingRule) []MaskingRule {
	for _, e := range p.masking {
		if e.when != nil {
			ok, err := e.when.eval(a)
			if !ok && err == nil {
				continue
			}
		}
		out = append(out, e.rule)
	}
	return out
}

// firstMatch evaluates the rules of one action group in file order and
// returns the first that counts as matched, recording matches in d.
func (p *policy) firstMatch(a *activation, group int, in *Input, d *Decision) (*rule, string, bool) {
	c := p.groups[group].cursor(in.GCP.Method, in.GCP.Service)
	for r := c.next(); r != nil; r = c.next() {
		ok, err := r.when.eval(a)
		if err != nil {
			errText := err.Error()
			d.Matches = append(d.Matches, Match{Policy: p.name, Rule: r.name, Action: r.action, Error: errText})
			if r.action == Allow {
				continue
			}
			return r, errText, true
		}
		if ok {
			d.Matches = append(d.Matches, Match{Policy: p.name, Rule: r.name, Action: r.action})
			return r, "", true
		}
	}
	return nil, "", false
}
