// Package gcp recognises Google Cloud API operations: it normalises the
// request as Google's front end would read it and finds the Discovery method
// it invokes in an embedded catalog generated from Google's Discovery documents.
package gcp

// Operation is the Google Cloud operation a request invokes. The zero value
// means "unknown operation", a normal outcome.
type Operation struct {
	// Service is the API name, e.g. "compute".
	Service string
	// Version is the API version, e.g. "v1".
	Version string
	// Method is the Discovery method id, e.g. "compute.instances.delete";
	// empty when the operation is unknown.
	Method string
	// Project, Location and Resource come from the path parameters. Resource is
	// the full resource path, e.g. "projects/p/zones/z/instances/i".
	Project  string
	Location string
	Resource string
	// ReadOnly is true for operations that do not change state.
	ReadOnly bool
	// LongRunning is true when the method returns a long-running operation.
	LongRunning bool
	// Params are the path parameters by their Discovery names.
	Params map[string]string
}
