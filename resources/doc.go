// Package resources looks up what Google holds about the resource a request
// acts on, so that policies decide on the resource and not on its spelling
// in the URL: a project named by number is the same project as by id, a
// bucket belongs to a project its path does not name, and "production" is
// a folder, a label or a tag rather than an id suffix.
//
// # What is looked up
//
//   - A project (Resource Manager v3 projects.get, by id or number): id,
//     number, display name, labels, its ancestry (folders.get up to the
//     organization: ids and display names, nearest first) and its
//     effective tags (effectiveTags.list, inherited ones included).
//   - The target of the request, where its own GET exposes labels: a Cloud
//     Storage bucket (buckets.get: project number and labels; an object's
//     bucket), a Compute Engine instance or disk, a Secret Manager secret
//     and a Cloud SQL instance (settings.userLabels). A bucket resolves to
//     its project.
//
// Lookups use airlock's own read-only credential (an http.Client the
// caller authorises), never the one Envoy injects. Minimal roles:
// roles/browser on the organization (projects.get, folders.get,
// organizations.get), roles/resourcemanager.tagViewer (effective tags),
// and for target labels storage.buckets.get, compute.instances.get,
// compute.disks.get, secretmanager.secrets.get and cloudsql.instances.get
// (e.g. roles/storage.insightsCollectorService or a custom role holding
// exactly those permissions).
//
// # Cache
//
// Every answer is cached in process (bounded, least recently used out
// first) for the TTL of its kind; "not found" is cached for a short
// negative TTL; errors are not cached. Concurrent lookups of one resource
// in one process share one upstream call. With a Redis client, answers are
// shared across replicas, and a short Redis lock lets one replica fetch
// while the others wait for its answer, so that twenty replicas do not
// call Google twenty times. An edit of a label takes effect within the TTL.
//
// # Failure
//
// A resource that does not exist (404) yields empty attributes with
// Exists false: policies decide. Any other failure (403, 5xx, a timeout)
// is an error naming what could not be looked up; the caller refuses the
// decisions that needed it (fail closed).
package resources
