package gcp

import "strings"

// Cloud Storage XML API. Hosts storage.googleapis.com (and its mTLS and
// regional forms) and commondatastorage.googleapis.com serve it path-style,
// /BUCKET/OBJECT; BUCKET.storage.googleapis.com serves it bucket-as-host,
// /OBJECT. A path that the JSON API claims (storage/, upload/, download/,
// resumable/, batch/) is never read as XML. The object name is the rest of
// the path, fully decoded ("/" and "%2F" both separate its words).
//
// Requests map to the JSON API method that does the same thing, so policies
// need one vocabulary:
//
//	GET  /                      storage.buckets.list
//	GET  /B                     storage.objects.list  (HEAD: storage.buckets.get)
//	GET  /B?acl                 storage.bucketAccessControls.list
//	GET  /B?defaultObjectAcl    storage.defaultObjectAccessControls.list
//	GET  /B?<config>            storage.buckets.get   (cors, lifecycle, ...)
//	PUT  /B                     storage.buckets.insert
//	PUT  /B?<config>            storage.buckets.patch (also DELETE /B?<config>)
//	DELETE /B                   storage.buckets.delete
//	POST /B                     storage.objects.insert (HTML form upload)
//	GET|HEAD /B/O               storage.objects.get
//	GET  /B/O?acl               storage.objectAccessControls.list
//	PUT  /B/O                   storage.objects.insert
//	PUT  /B/O + x-goog-copy-source   storage.objects.copy
//	PUT  /B/O?acl|retention|legalHold  storage.objects.patch
//	POST /B/O?uploads|uploadId|upload_id, or x-goog-resumable: start   storage.objects.insert
//	DELETE /B/O                 storage.objects.delete
//
// Aborting an upload (DELETE with uploadId or upload_id) and any other
// request are unknown operations of service storage. The project, when the
// request names one, comes from the x-goog-project-id header.

// bucketConfig are XML sub-resources that read or write bucket configuration.
var bucketConfig = []string{"billing", "cors", "encryptionConfig", "lifecycle", "location", "logging", "storageClass", "versioning", "website", "tagging", "retentionPolicy", "iamConfiguration", "objectRetention"}

var jsonPrefixes = map[string]bool{"storage": true, "upload": true, "download": true, "resumable": true, "batch": true}

// xmlBucket reports whether host serves the XML API and, for the
// bucket-as-host form, the bucket it names.
func xmlBucket(host string) (bucket string, ok bool) {
	switch host {
	case "storage.googleapis.com", "storage.mtls.googleapis.com", "commondatastorage.googleapis.com":
		return "", true
	}
	if svc, _, ok := regionalHost(host); ok && svc == "storage" {
		return "", true
	}
	for _, suffix := range []string{".storage.googleapis.com", ".commondatastorage.googleapis.com"} {
		if b, ok := strings.CutSuffix(host, suffix); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

func (r *Recognizer) storageXML(host, method, path string, query map[string][]string, headers map[string]string) (Operation, bool) {
	hostBucket, ok := xmlBucket(host)
	if !ok {
		return Operation{}, false
	}
	segs := splitPath(path)
	var bucket, object string
	if hostBucket != "" {
		bucket = hostBucket
		object = decodeParam(strings.Join(segs, "/"))
	} else {
		if len(segs) > 0 && jsonPrefixes[segs[0]] {
			return Operation{}, false
		}
		if len(segs) > 0 {
			bucket = decodeParam(segs[0])
			object = decodeParam(strings.Join(segs[1:], "/"))
		}
	}
	if bucket != "" && !validBucket(bucket) {
		// Not a bucket name Google accepts: an unknown storage request.
		return Operation{Service: "storage"}, true
	}
	has := func(k string) bool { _, ok := query[k]; return ok }
	id := ""
	switch {
	case bucket == "":
		if method == "GET" || method == "HEAD" {
			id = "storage.buckets.list"
		}
	case object == "":
		config := false
		for _, k := range bucketConfig {
			config = config || has(k)
		}
		switch method {
		case "GET", "HEAD":
			switch {
			case has("acl"):
				id = "storage.bucketAccessControls.list"
			case has("defaultObjectAcl"):
				id = "storage.defaultObjectAccessControls.list"
			case config || method == "HEAD":
				id = "storage.buckets.get"
			default:
				id = "storage.objects.list"
			}
		case "PUT":
			if config || has("acl") || has("defaultObjectAcl") {
				id = "storage.buckets.patch"
			} else {
				id = "storage.buckets.insert"
			}
		case "DELETE":
			if config {
				id = "storage.buckets.patch"
			} else {
				id = "storage.buckets.delete"
			}
		case "POST":
			id = "storage.objects.insert"
		}
	default:
		upload := has("uploads") || has("uploadId") || has("upload_id")
		switch method {
		case "GET", "HEAD":
			if has("acl") {
				id = "storage.objectAccessControls.list"
			} else {
				id = "storage.objects.get"
			}
		case "PUT":
			switch {
			case has("acl") || has("retention") || has("legalHold"):
				id = "storage.objects.patch"
			case headers["x-goog-copy-source"] != "":
				id = "storage.objects.copy"
			default:
				id = "storage.objects.insert"
			}
		case "POST":
			if upload || strings.EqualFold(strings.TrimSpace(headers["x-goog-resumable"]), "start") {
				id = "storage.objects.insert"
			}
		case "DELETE":
			if !has("uploadId") && !has("upload_id") {
				id = "storage.objects.delete"
			}
		}
	}
	op := Operation{Service: "storage"}
	if id != "" {
		if known, ok := r.catalog.byID(id); ok {
			op = known
		}
	}
	if bucket != "" {
		op.Resource = "projects/_/buckets/" + bucket
		op.Params = map[string]string{"bucket": bucket}
		if object != "" {
			op.Resource += "/objects/" + object
			op.Params["object"] = object
		}
	}
	op.Project = strings.TrimSpace(headers["x-goog-project-id"])
	if _, region, ok := regionalHost(host); ok {
		op.Location = region
	}
	return op, true
}

// validBucket reports whether b is a Cloud Storage bucket name: 3 to 222
// characters of a-z, 0-9, "-", "_" and ".", starting and ending with a
// letter or digit.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 222 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '-' && c != '_' && c != '.' {
			return false
		}
		if (i == 0 || i == len(b)-1) && !alnum {
			return false
		}
	}
	return true
}
