package main

import (
	"testing"

	"github.com/airlockhq/airlock/config"
)

func TestRecorderOptions(t *testing.T) {
	c := config.Default().Recorder
	o := recorderOptions(c)
	if o.Spool != c.Spool || o.SpoolMaxBytes != c.SpoolMaxBytes || o.OnFull != c.OnFull ||
		o.IdleGap != c.IdleGap || o.MaxBodyBytes != c.MaxBodyBytes || o.SigningKey != c.SigningKey ||
		o.CheckpointInterval != c.CheckpointInterval || o.Unauthenticated.SpoolFraction != c.Unauthenticated.SpoolFraction ||
		o.Unauthenticated.Rate != c.Unauthenticated.Rate || o.Unauthenticated.Burst != c.Unauthenticated.Burst ||
		o.Unauthenticated.MaxSources != c.Unauthenticated.MaxSources {
		t.Fatalf("recorderOptions(%+v) = %+v", c, o)
	}
}
