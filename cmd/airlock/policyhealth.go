package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/policies"
)

// policyHealth is the policies' entry on /healthz. It follows the files on
// disk, not the reload events: it is healthy exactly when the files load
// and the set they make is the one in force, whatever sequence of edits led
// there (a broken edit put back to the text in force is healthy again,
// though nothing was reloaded).
type policyHealth struct {
	paths   []string
	load    func() (*policies.Set, error)
	inForce func() *policies.Set

	mu      sync.Mutex
	seen    string // fingerprint of the files at the previous poll
	checked string // fingerprint last loaded
	loadErr error  // from loading the files of checked
	digest  string // of the set the files of checked make
	maskErr error  // why the set of maskFor could not be put in force
	maskFor string
	polled  bool
}

func newPolicyHealth(paths []string, load func() (*policies.Set, error), inForce func() *policies.Set) *policyHealth {
	return &policyHealth{paths: paths, load: load, inForce: inForce}
}

// notInForce records that the set with this digest loaded but could not be
// put in force (its masking detectors failed).
func (p *policyHealth) notInForce(digest string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maskFor, p.maskErr = digest, err
}

// run polls the files every interval until ctx ends.
func (p *policyHealth) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.poll()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads the files and, once their content has held still for one
// poll (as the reloader requires), loads them when it changed.
func (p *policyHealth) poll() {
	fp := fingerprint(p.paths)
	p.mu.Lock()
	stable := fp == p.seen
	p.seen = fp
	due := stable && fp != p.checked
	p.mu.Unlock()
	if !due {
		return
	}
	set, err := p.load()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checked, p.loadErr, p.digest, p.polled = fp, err, "", true
	if err == nil {
		p.digest = set.Digest()
	}
}

func (p *policyHealth) check(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.polled:
		return nil // the files loaded at start are in force
	case p.loadErr != nil:
		return fmt.Errorf("the policy files on disk do not load; the previous policies stay in force: %w", p.loadErr)
	case p.digest == p.inForce().Digest():
		return nil
	case p.maskFor == p.digest && p.maskErr != nil:
		return fmt.Errorf("the policy files on disk load but cannot be put in force; the previous policies stay in force: %w", p.maskErr)
	}
	return errors.New("the policy files on disk changed and are not in force yet")
}

// fingerprint hashes what the policy loader reads under paths: each path
// given, and the *.yaml and *.yml files of a folder, with any error met.
func fingerprint(paths []string) string {
	h := sha256.New()
	add := func(name string) {
		b, err := os.ReadFile(name)
		fmt.Fprintf(h, "%d:%s:%v:%d:", len(name), name, err, len(b))
		h.Write(b)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		switch {
		case err != nil:
			fmt.Fprintf(h, "stat:%s:%v:", p, err)
		case !st.IsDir():
			add(p)
		default:
			entries, err := os.ReadDir(p)
			fmt.Fprintf(h, "dir:%s:%v:", p, err)
			for _, e := range entries {
				n := e.Name()
				if strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
					continue
				}
				full := filepath.Join(p, n)
				if fst, err := os.Stat(full); err == nil && fst.IsDir() {
					continue
				}
				add(full)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
