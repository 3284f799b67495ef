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

		CheckpointInterval: c.CheckpointInterval,
		Unauthenticated:    unauthenticatedOptions(c.Unauthenticated),
		Durability:         c.Durability,
	}
}

// unauthenticatedOptions maps recorder.unauthenticated; a rate of 0 (record
// none) is a negative Rate in Options, where 0 takes the default.
func unauthenticatedOptions(u config.RecorderUnauthenticated) UnauthenticatedOptions {
	rate := u.Rate
	if rate == 0 {
		rate = -1
	}
	return UnauthenticatedOptions{SpoolFraction: u.SpoolFraction, Rate: rate, Burst: u.Burst, MaxSources: u.MaxSources}
}
