package recorder

import "github.com/airlockhq/airlock/config"

// OptionsFromConfig maps the recorder section of airlock.yaml to Options.
// The caller adds what the file does not hold: Mask, Logger, Redis (e.g.
// the approvals store URL when it is redis://) and clients for tests.
func OptionsFromConfig(c config.Recorder) Options {
	return Options{
		Sink:          c.Sink,
		Spool:         c.Spool,
		SpoolMaxBytes: c.SpoolMaxBytes,
		OnFull:        c.OnFull,
		IdleGap:       c.IdleGap,
		MaxBodyBytes:  c.MaxBodyBytes,
		SigningKey:    c.SigningKey,
	}
}
