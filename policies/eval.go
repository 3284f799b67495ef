package policies

import (
	"context"
	"fmt"

	"github.com/airlockhq/airlock/masking"
)

// msgNoPolicy is the message when no policy's match holds.
const msgNoPolicy = "no policy applies to this request"

// Evaluate decides a request. It fails closed: no applicable policy, a rule
// that cannot be evaluated or a context that ended gives Deny. It stops
// evaluating a policy's rules once they cannot change the decision, so
// Matches lists only the rules it evaluated that matched; use Explain for
// every match. Deny rules are evaluated in every applicable policy, so that
// Deciders names every explicit rule behind a denial.
//
// The returned Decision shares its Approval and Masking field slices with
// the set: callers must not modify them.
func (s *Set) Evaluate(ctx context.Context, in Input) Decision {
	return s.each(ctx, &in, func(p *policy, a *activation, dv Decision) Decision {
		d := &dv
		if r, errText, ok := p.firstMatch(a, 0, &a.in, d); ok {
			d.offerRule(r, errText)
			return dv
		}
		if d.Action == Deny {
			// Denied already: this policy's approve and allow rules cannot
			// change that. Its default deny joins the deciders only while
			// no rule decided, and only if no rule of its own matches.
			if p.def != Deny || d.explicit() {
				return dv
			}
			if _, _, ok := p.firstMatch(a, 1, &a.in, d); ok {
				return dv
			}
			if _, _, ok := p.firstMatch(a, 2, &a.in, d); ok {
				return dv
			}
			d.Matches = append(d.Matches, Match{Policy: p.name, Action: p.def})
			d.offerDefault(p)
			return dv
		}
		// The policy gives approve (an approve rule matched), allow (an
		// allow rule matched) or its default.
		if r, errText, ok := p.firstMatch(a, 1, &a.in, d); ok {
			d.offerRule(r, errText)
			return dv
		}
		if d.Action >= Allow && p.def <= d.Action {
			return dv
		}
		if r, errText, ok := p.firstMatch(a, 2, &a.in, d); ok {
			d.offerRule(r, errText)
			return dv
		}
		d.Matches = append(d.Matches, Match{Policy: p.name, Action: p.def})
		d.offerDefault(p)
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
		var best []*rule
		var bestErr []string
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
			if !ok {
				continue
			}
			switch {
			case len(best) == 0 || r.action > best[0].action:
				best, bestErr = []*rule{r}, []string{errText}
			case r.action == best[0].action:
				best, bestErr = append(best, r), append(bestErr, errText)
			}
		}
		if len(best) == 0 {
			d.Matches = append(d.Matches, Match{Policy: p.name, Action: p.def})
			d.offerDefault(p)
			return dv
		}
		for i, r := range best {
			d.offerRule(r, bestErr[i])
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

// offerRule weighs a matched rule against the decision so far: a stronger
// action replaces it; the same action adds the rule to Deciders, replacing
// deciders that were only defaults.
func (d *Decision) offerRule(r *rule, errText string) {
	m := Match{Policy: r.policy, Rule: r.name, Action: r.action, Error: errText}
	switch {
	case r.action > d.Action, r.action == d.Action && !d.explicit():
		d.Action, d.Policy, d.Rule, d.Approval = r.action, r.policy, r.name, r.approval
		d.Message = r.decisionMessage()
		if errText != "" {
			d.Message = fmt.Sprintf("%s (the rule could not be evaluated: %s; it counts as matched to fail closed)", d.Message, errText)
		}
		d.Deciders = append(d.Deciders[:0], m)
	case r.action == d.Action:
		d.Deciders = append(d.Deciders, m)
	}
}

// offerDefault weighs a policy's default: it decides only when it is
// stronger, and joins Deciders at the same action only while no rule
// decided.
func (d *Decision) offerDefault(p *policy) {
	m := Match{Policy: p.name, Action: p.def}
	switch {
	case p.def > d.Action:
		d.Action, d.Policy, d.Rule, d.Message, d.Approval = p.def, p.name, "", p.defMsg, p.approval
		d.Deciders = append(d.Deciders[:0], m)
	case p.def == d.Action && !d.explicit():
		d.Deciders = append(d.Deciders, m)
	}
}

// explicit reports whether a rule (not only defaults) decided.
func (d *Decision) explicit() bool {
	for _, m := range d.Deciders {
		if m.Rule != "" {
			return true
		}
	}
	return false
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
func (p *policy) appendMasking(a *activation, out []masking.Rule) []masking.Rule {
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
