package gcp

import "strings"

// Cloud Storage XML API. Hosts storage.googleapis.com (and its mTLS,
// regional and Private Service Connect forms), commondatastorage.googleapis.com
// and the upload and download endpoints storage-upload.googleapis.com and
// storage-download.googleapis.com serve it path-style, /BUCKET/OBJECT;
// BUCKET.storage.googleapis.com (and BUCKET.commondatastorage,
// BUCKET.storage-upload, BUCKET.storage-download) serve it bucket-as-host,
// /OBJECT. A path that the JSON API claims (storage/, upload/, download/,
// resumable/, batch/) is never read as XML. The object name is the rest of
// the path, fully decoded ("/" and "%2F" both separate its words).
//
// Requests map to the JSON API method that does the same thing, so policies
// need one vocabulary:
//
//	GET  /                      storage.buckets.list
//	GET|POST /?Action=A         HMAC keys: CreateAccessKey storage.projects.hmacKeys.create,
//	                            DeleteAccessKey .delete, GetAccessKey .get,
//	                            ListAccessKeys .list, UpdateAccessKey .update
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
//	PUT  /B/O?compose           storage.objects.compose
//	PUT  /B/O?acl|retention|legalHold  storage.objects.patch
//	POST /B/O?uploads|uploadId|upload_id, or x-goog-resumable: start   storage.objects.insert
//	DELETE /B/O                 storage.objects.delete
//
// Aborting an upload (DELETE with uploadId or upload_id) and any other
// request are unknown operations of service storage.
//
// Interoperability headers: Cloud Storage honours the x-amz-* twin of an
// x-goog-* header (x-amz-copy-source, x-amz-acl, x-amz-meta-*, ...), so
// each is read as its twin (x-amz-copy-source makes a PUT a copy), and a
// request carrying both spellings with different values is refused.
//
// Project: Google reads the x-goog-project-id header only to create a
// bucket (PUT /B) or to list buckets (GET /); there it is the project. For
// every other request the project is not in the request (a bucket's project
// is a property of the bucket) and Project is empty.

// bucketConfig are XML sub-resources that read or write bucket configuration.
var bucketConfig = []string{"billing", "cors", "encryptionConfig", "lifecycle", "location", "logging", "storageClass", "versioning", "website", "tagging", "retentionPolicy", "iamConfiguration", "objectRetention"}

var jsonPrefixes = map[string]bool{"storage": true, "upload": true, "download": true, "resumable": true, "batch": true}

// hmacActions map the XML API's HMAC key actions to JSON API methods.
var hmacActions = map[string]string{
	"CreateAccessKey": "storage.projects.hmacKeys.create",
	"DeleteAccessKey": "storage.projects.hmacKeys.delete",
	"GetAccessKey":    "storage.projects.hmacKeys.get",
	"ListAccessKeys":  "storage.projects.hmacKeys.list",
	"UpdateAccessKey": "storage.projects.hmacKeys.update",
}

// xmlPathStyle are the hosts that serve the XML API path-style.
var xmlPathStyle = map[string]bool{
	"storage.googleapis.com":           true,
	"storage.mtls.googleapis.com":      true,
	"commondatastorage.googleapis.com": true,
	"storage-upload.googleapis.com":    true,
	"storage-download.googleapis.com":  true,
}

// xmlBucketHosts are the suffixes of the bucket-as-host form.
var xmlBucketHosts = []string{".storage.googleapis.com", ".commondatastorage.googleapis.com", ".storage-upload.googleapis.com", ".storage-download.googleapis.com"}

// xmlBucket reports whether host serves the XML API and, for the
// bucket-as-host form, the bucket it names.
func xmlBucket(host string) (bucket string, ok bool) {
	if xmlPathStyle[host] {
		return "", true
	}
	if svc, _, ok := regionalHost(host); ok && svc == "storage" {
		return "", true
	}
	if canon := aliasOf(host); canon == "storage.googleapis.com" && strings.HasSuffix(host, ".p.googleapis.com") {
		return "", true // Private Service Connect: storage-ENDPOINT.p.googleapis.com
	}
	for _, suffix := range xmlBucketHosts {
		if b, ok := strings.CutSuffix(host, suffix); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

// xmlHeader returns the value of x-goog-NAME, or of its twin x-amz-NAME.
func xmlHeader(headers map[string]string, name string) string {
	if v, ok := headers["x-goog-"+name]; ok {
		return v
	}
	return headers["x-amz-"+name]
}

// checkInteropHeaders refuses a request whose x-amz-* and x-goog-* twins
// disagree: the gateway and Cloud Storage could act on different ones.
func checkInteropHeaders(headers map[string]string) error {
	for k, v := range headers {
		name, ok := strings.CutPrefix(k, "x-amz-")
		if !ok {
			continue
		}
		if g, ok := headers["x-goog-"+name]; ok && strings.TrimSpace(g) != strings.TrimSpace(v) {
			return refusef("the request carries both x-goog-%s and x-amz-%s with different values; Cloud Storage reads them as the same header, so send one of them", name, name)
		}
	}
	return nil
}

// copySource splits a copy source header, [/]BUCKET/OBJECT[?...], into the
// source bucket and the decoded object name; ok is false when it has no
// object.
func copySource(v string) (bucket, object string, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "/")
	v, _, _ = strings.Cut(v, "?")
	bucket, object, ok = strings.Cut(v, "/")
	if !ok || bucket == "" || object == "" {
		return "", "", false
	}
	return decodeParam(bucket), decodeParam(object), true
}

func (r *Recognizer) storageXML(host, method, path string, query map[string][]string, headers map[string]string) (Operation, bool, error) {
	hostBucket, ok := xmlBucket(host)
	if !ok {
		return Operation{}, false, nil
	}
	segs := splitPath(path)
	var bucket, object string
	if hostBucket != "" {
		bucket = hostBucket
		object = decodeParam(strings.Join(segs, "/"))
	} else {
		if len(segs) > 0 && jsonPrefixes[segs[0]] {
			return Operation{}, false, nil
		}
		if len(segs) > 0 {
			bucket = decodeParam(segs[0])
			object = decodeParam(strings.Join(segs[1:], "/"))
		}
	}
	if err := checkInteropHeaders(headers); err != nil {
		return Operation{}, true, err
	}
	if bucket != "" && !validBucket(bucket) {
		// Not a bucket name Google accepts: an unknown storage request.
		return Operation{Service: "storage"}, true, nil
	}
	has := func(k string) bool { _, ok := query[k]; return ok }
	id := ""
	projectFromHeader := false
	var params map[string]string
	switch {
	case bucket == "" && has("Action"):
		id = hmacActions[query["Action"][0]]
		if len(query["Action"]) != 1 {
			id = ""
		}
		params = map[string]string{}
		if v := query["UserName"]; len(v) == 1 {
			params["serviceAccountEmail"] = v[0]
		}
		if v := query["AccessKeyId"]; len(v) == 1 {
			params["accessId"] = v[0]
		}
	case bucket == "":
		if method == "GET" || method == "HEAD" {
			id = "storage.buckets.list"
			projectFromHeader = true
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
				projectFromHeader = true
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
			case has("compose"):
				id = "storage.objects.compose"
			case xmlHeader(headers, "copy-source") != "":
				id = "storage.objects.copy"
				if sb, so, ok := copySource(xmlHeader(headers, "copy-source")); ok {
					params = map[string]string{"sourceBucket": sb, "sourceObject": so}
				}
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
		if params == nil {
			params = map[string]string{}
		}
		params["bucket"] = bucket
		if object != "" {
			op.Resource += "/objects/" + object
			params["object"] = object
		}
	}
	op.Params = params
	if projectFromHeader {
		op.Project = strings.TrimSpace(headers["x-goog-project-id"])
	}
	if _, region, ok := regionalHost(host); ok {
		op.Location = region
	}
	return op, true, nil
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
