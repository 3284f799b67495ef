package recorder

// Abandon stops r as a crash would, for tests.
func Abandon(r *Recorder) { r.abandon() }
