package gcp

import "strings"

// Host aliases. Discovery lists each API's rootUrl, its mtlsRootUrl and its
// regional endpoints; those hosts are in the catalog as they are. Google
// serves the same APIs under other names, which airlock reads as the API's
// own host (SERVICE.googleapis.com):
//
//   - SERVICE.mtls.googleapis.com: the mutual-TLS endpoint. Discovery lists
//     it for most APIs; the others follow the same form.
//   - SERVICE.REGION.rep.googleapis.com: a regional endpoint (data stays in
//     REGION), listed in Discovery for some regions and not for others.
//   - SERVICE.REGION.p.rep.googleapis.com: the Private Service Connect name
//     of a regional endpoint (the "p" label marks the private form).
//   - REGION-SERVICE.googleapis.com: a locational endpoint, such as
//     us-east1-run.googleapis.com for Cloud Run.
//   - SERVICE-ENDPOINT.p.googleapis.com: a Private Service Connect endpoint
//     for global Google APIs, where ENDPOINT is the name the network admin
//     gave the endpoint (lower-case letters and digits, up to 20), e.g.
//     storage-vialink1.p.googleapis.com.
//   - content-storage.googleapis.com: the Cloud Storage JSON API (Google
//     returns it in an object's mediaLink for downloads; airlock reads the
//     whole JSON API there, never the XML API).
//   - storage-upload.googleapis.com, storage-download.googleapis.com: the
//     Cloud Storage XML API endpoints dedicated to uploads and downloads,
//     path-style and bucket-as-host (BUCKET.storage-upload.googleapis.com).
//     A path that the JSON API claims is read as the JSON API there, as on
//     storage.googleapis.com.
//
// The region of a regional form becomes the operation's location when the
// path names none.

// storageAliases are other names of the Cloud Storage front end.
var storageAliases = map[string]bool{
	"content-storage.googleapis.com":  true,
	"storage-upload.googleapis.com":   true,
	"storage-download.googleapis.com": true,
}

// aliasOf returns the canonical host SERVICE.googleapis.com that an alias
// of a normalised host stands for, or "" when host is no alias.
func aliasOf(host string) string {
	if storageAliases[host] {
		return "storage.googleapis.com"
	}
	if svc, _, ok := regionalHost(host); ok {
		return svc + ".googleapis.com"
	}
	rest, ok := strings.CutSuffix(host, ".googleapis.com")
	if !ok || rest == "" {
		return ""
	}
	if svc, ok := strings.CutSuffix(rest, ".mtls"); ok {
		if strings.IndexByte(svc, '.') < 0 && svc != "" {
			return svc + ".googleapis.com"
		}
		return ""
	}
	if name, ok := strings.CutSuffix(rest, ".p"); ok {
		// SERVICE-ENDPOINT: the endpoint name has no dash, so the last
		// dash ends the service name.
		i := strings.LastIndexByte(name, '-')
		if i <= 0 || strings.IndexByte(name, '.') >= 0 || !pscEndpointName(name[i+1:]) {
			return ""
		}
		return name[:i] + ".googleapis.com"
	}
	if strings.IndexByte(rest, '.') >= 0 {
		return ""
	}
	// REGION-SERVICE: a region has two dash-separated words and a digit.
	if i := strings.LastIndexByte(rest, '-'); i > 0 && i < len(rest)-1 && isRegion(rest[:i]) {
		return rest[i+1:] + ".googleapis.com"
	}
	return ""
}

// pscEndpointName reports whether s can name a Private Service Connect
// endpoint: 1 to 20 lower-case letters and digits, starting with a letter.
func pscEndpointName(s string) bool {
	if s == "" || len(s) > 20 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// regionalHost splits SERVICE.REGION.rep.googleapis.com and its Private
// Service Connect form SERVICE.REGION.p.rep.googleapis.com.
func regionalHost(host string) (service, region string, ok bool) {
	rest, ok := strings.CutSuffix(host, ".rep.googleapis.com")
	if !ok {
		return "", "", false
	}
	rest = strings.TrimSuffix(rest, ".p")
	service, region, ok = strings.Cut(rest, ".")
	if !ok || strings.IndexByte(region, '.') >= 0 || service == "" || region == "" {
		return "", "", false
	}
	return service, region, true
}

// isRegion reports whether s looks like a Google Cloud region: us-east1,
// europe-west4, northamerica-northeast1.
func isRegion(s string) bool {
	dash := strings.IndexByte(s, '-')
	if dash <= 0 || dash == len(s)-1 {
		return false
	}
	last := s[len(s)-1]
	if last < '0' || last > '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}
