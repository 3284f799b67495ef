// Package gcp recognises Google Cloud API operations: it normalises the
// request as Google's front end would read it and finds the Discovery method
// it invokes in an embedded catalog generated from Google's Discovery documents.
//
// # Catalog
//
// catalog.jsonl.gz is generated (go generate ./gcp) from every Discovery
// document (*-api.json) of the google.golang.org/api module pinned in
// go.mod, skipping versions that name alpha or beta, except Cloud SQL
// Admin v1beta4, the version gcloud sql and Terraform call (its method ids
// are those of v1: sql.instances.delete). Where two documents
// serve the same path (compute "preview" is served below compute/v1/), the
// one with a plain version (v1, v2.1, directory_v1) wins. Each method is
// reachable at every host of its document (rootUrl, mtlsRootUrl, the
// regional endpoints, and www.googleapis.com for documents with a service
// path), through its path (flatPath when present, below the service path)
// and its media upload (simple, resumable) and download paths. Other names
// of a host (mTLS, regional and Private Service Connect forms not listed in
// Discovery, and the Cloud Storage aliases) are read as
// SERVICE.googleapis.com; hosts.go lists them.
// Matching prefers literal segments to variables; a last segment ending in a
// custom verb of the API (":access") only matches a template with that verb;
// HEAD falls back to GET.
//
// # Operation fields
//
//   - ReadOnly: the method changes nothing (catalogen.ReadOnly, explained
//     in docs/readonly.md). GET and HEAD read; PUT, PATCH and DELETE write;
//     a POST method writes unless a curated classification says it reads:
//     waiting for a long-running operation (compute.zoneOperations.wait and
//     every operations.wait), getIamPolicy, testIamPermissions, reviewed
//     validate, lint and preview methods, and names that start with get,
//     list, search, batchGet, lookup or query naming nothing that mints,
//     reveals or changes; reviewed exceptions (bigquery.jobs.query, methods
//     that send mail, hand out codes or write results elsewhere) write.
//     gcp/testdata/readonly.golden lists every method whose readonly
//     differs from its verb.
//   - LongRunning: the response is a compute-style Operation or any
//     *Operation schema with the google.longrunning "done" field.
//   - Resource: the request path from after the service path and the
//     version segment up to the last segment holding a path parameter,
//     percent-decoded, without a ":verb" suffix:
//     projects/p/zones/z/instances/i for instances.delete and .stop,
//     projects/p/zones/z for instances.list (the parent), and
//     projects/p/secrets/s/versions/v for versions.access. Cloud Storage
//     paths use the IAM resource name: b/B/o/O becomes
//     projects/_/buckets/B/objects/O (the object name decoded, "/" included).
//   - Project: the path parameter project, projectId, projectsId or
//     projectName; else the project of a service account address
//     (projects/-/serviceAccounts/SA@P.iam.gserviceaccount.com); else the
//     segment after "projects" in Resource ("_" and "-" do not count); else a
//     project query parameter of the method (storage buckets.list); for the
//     Cloud Storage XML API, the x-goog-project-id header of a bucket create
//     or list, the only requests where Google reads it. A Cloud Storage
//     bucket's project is not in its path: Project is empty there.
//   - Location: the path parameter location, locationsId, locationId, zone,
//     zonesId, region or regionsId; else the segment after locations, zones
//     or regions in Resource; else the region of a *.rep.googleapis.com host.
//   - Params: path parameters by Discovery name, decoded (flatPath names such
//     as projectsId, plus a multi-segment parameter such as name).
//
// # Requests
//
// [NormalizePath] and [ParseQuery] describe the path and query rules. The
// effective method is X-HTTP-Method-Override (or the $httpMethod system
// parameter), honoured on POST only as Google does; on another method an
// override naming a different method is refused as ambiguous. Query
// parameters that would change what the gateway inspects (alt other than
// json or media, JSONP callbacks, escaped credential parameters, a slice
// of the serial port output) are refused; params.go lists them.
//
// A path whose first segment is "batch" and that no method claims is a
// batch: its multipart/mixed body is parsed and each part recognised
// ([MaxBatchParts]); a batch that cannot be read completely is refused.
// Cloud Storage XML API requests are mapped to the JSON API method that
// does the same thing (see storage.go). A client library's discovery
// document fetch (GET /$discovery/rest?version=V on a service host) is
// discovery.apis.getRest of that service.
//
// # Unknown operations
//
// An operation the catalog does not hold is a normal outcome: Operation has
// the host's service and no Method, and Recognized.Unrecognized says why,
// in words for the agent: a host that is not Google's, a googleapis.com
// host airlock does not know, a method the host's API does not have (naming
// the API and version airlock knows there), a gRPC call (application/grpc,
// +proto, +json, grpc-web, grpc-web-text, or the /$rpc/ fallback; naming
// the REST transport option of gcloud and the client libraries), or a batch
// part that is one of those. The gateway refuses such a request before
// policy unless it is configured to hand it to policy.
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
