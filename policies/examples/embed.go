// Package examples holds the policy set airlock ships: a baseline for AI
// agents working on Google Cloud. It is the default policy set of a local
// trial and a starting point for your own.
package examples

import "embed"

// FS holds the example policy files (*.yaml) at its root; load it with
// policies.LoadFS(opts, examples.FS, ".").
//
//go:embed *.yaml
var FS embed.FS
