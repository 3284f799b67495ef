package catalogen

import (
	"sort"
	"strings"
	"unicode"
)

// ReadOnly says whether a method changes nothing: the meaning of
// gcp.readonly. The HTTP verb decides for most methods: GET and HEAD read;
// PUT, PATCH and DELETE write. A POST method writes unless this curated
// classification says it reads, in this order:
//
//  1. writeIDs: reviewed POST methods whose names read like reads but that
//     change state, send something, start a job whose output lands
//     somewhere, or hand out a credential or a code. They write.
//  2. readIDs: reviewed POST methods that only check, validate, lint or
//     preview what they are sent (compute.urlMaps.validate,
//     iam.iamPolicies.lintPolicy, policytroubleshooter.iam.troubleshoot).
//     They read.
//  3. Following a long-running operation: a method named wait on an
//     operations collection (compute.zoneOperations.wait, regionOperations,
//     globalOperations, and every API's operations.wait) reads. Waiting for
//     an operation changes nothing; the change was made, or approved, by
//     the request that started it. Operation get and list are GET methods.
//  4. readNames: names that read wherever they appear: getIamPolicy and
//     testIamPermissions (POST in Resource Manager and most v1 APIs), the
//     organization-policy getters and listers of Resource Manager v1.
//  5. Read words: a name that starts with get, list, search, batchGet,
//     lookup or query, as a whole camel-case word (listInstances, not
//     listener), reads unless one of the words after it names something
//     that mints, reveals or changes (token, credential, secret, password,
//     sign, certificate, generate, key, code, create, delete, update, set,
//     insert, patch, write, execute, run). runQuery and
//     runAggregationQuery (Datastore, Firestore) read.
//
// Every other POST method writes. gcp/testdata/readonly.golden lists every
// catalog method whose readonly differs from its verb; a change to these
// rules or to the Discovery documents shows there for review.
func ReadOnly(httpMethod, id string) bool {
	switch httpMethod {
	case "GET", "HEAD":
		return true
	case "POST":
	default:
		return false
	}
	if writeIDs[id] {
		return false
	}
	if readIDs[id] {
		return true
	}
	name := lastPart(id)
	if name == "wait" && operationsCollection(id) {
		return true
	}
	if readNames[name] {
		return true
	}
	words := camelWords(name)
	if len(words) == 0 || !readWords[words[0]] {
		return false
	}
	start := 1
	if words[0] == "batch" {
		if len(words) < 2 || words[1] != "get" {
			return false
		}
		start = 2
	}
	for _, w := range words[start:] {
		if writeWord(w) {
			return false
		}
	}
	return true
}

// writeIDs are POST methods with a reading name that write.
var writeIDs = map[string]bool{
	// SQL may be DML or DDL.
	"bigquery.jobs.query": true,
	// Sends an e-mail (password reset, sign-in link) to the account.
	"identitytoolkit.relyingparty.getOobConfirmationCode": true,
	// Hands out a code that verifies another notification channel.
	"monitoring.projects.notificationChannels.getVerificationCode": true,
	// Long-running jobs that write their results to Cloud Storage or
	// BigQuery.
	"healthcare.projects.locations.datasets.consentStores.queryAccessibleData": true,
	"metastore.projects.locations.services.queryMetadata":                      true,
	"cloudasset.queryAssets": true,
	// Returns an authorization for Apigee's runtime to sync.
	"apigee.organizations.getSyncAuthorization": true,
}

// readIDs are POST methods that only check what they are sent.
var readIDs = map[string]bool{
	"compute.urlMaps.validate":                                                                   true,
	"compute.regionUrlMaps.validate":                                                             true,
	"compute.routers.preview":                                                                    true,
	"iam.iamPolicies.lintPolicy":                                                                 true,
	"iap.validateAttributeExpression":                                                            true,
	"policytroubleshooter.iam.troubleshoot":                                                      true,
	"pubsub.projects.schemas.validate":                                                           true,
	"pubsub.projects.schemas.validateMessage":                                                    true,
	"binaryauthorization.projects.attestors.validateAttestationOccurrence":                       true,
	"securitycenter.organizations.eventThreatDetectionSettings.validateCustomModule":             true,
	"securitycenter.folders.eventThreatDetectionSettings.validateCustomModule":                   true,
	"securitycenter.projects.eventThreatDetectionSettings.validateCustomModule":                  true,
	"bigtableadmin.projects.instances.tables.checkConsistency":                                   true,
	"managedkafka.projects.locations.schemaRegistries.compatibility.checkCompatibility":          true,
	"managedkafka.projects.locations.schemaRegistries.contexts.compatibility.checkCompatibility": true,
	"sql.projects.instances.verifyExternalSyncSettings":                                          true,
}

// readNames read in every API.
var readNames = map[string]bool{
	"getIamPolicy":                      true,
	"testIamPermissions":                true,
	"getOrgPolicy":                      true,
	"getEffectiveOrgPolicy":             true,
	"listOrgPolicies":                   true,
	"listAvailableOrgPolicyConstraints": true,
	"runQuery":                          true,
	"runAggregationQuery":               true,
}

// readWords start a reading name.
var readWords = map[string]bool{"get": true, "list": true, "search": true, "batch": true, "lookup": true, "query": true}

// writeWord reports whether a lower-case camel-case word names something
// that mints, reveals or changes.
func writeWord(w string) bool {
	switch w {
	case "set", "run", "key", "keys", "code", "codes":
		return true
	}
	for _, stem := range []string{"token", "credential", "secret", "password", "sign", "cert", "generat", "creat", "delet", "updat", "insert", "patch", "writ", "execut"} {
		if strings.HasPrefix(w, stem) {
			return true
		}
	}
	return false
}

func lastPart(id string) string { return id[strings.LastIndexByte(id, '.')+1:] }

// operationsCollection reports whether the method's resource (the part of
// the id before its name) is a collection of long-running operations.
func operationsCollection(id string) bool {
	rest := id[:max(strings.LastIndexByte(id, '.'), 0)]
	res := lastPart(rest)
	return res == "operations" || strings.HasSuffix(res, "Operations")
}

// camelWords splits a lowerCamel name into lower-case words:
// "listXpnHosts" is [list xpn hosts].
func camelWords(name string) []string {
	var words []string
	start := 0
	for i, r := range name {
		if i > start && unicode.IsUpper(r) {
			words = append(words, strings.ToLower(name[start:i]))
			start = i
		}
	}
	if start < len(name) {
		words = append(words, strings.ToLower(name[start:]))
	}
	return words
}

// CuratedIDs lists the method ids the classification names one by one, for
// a test that each is still a method of the catalog.
func CuratedIDs() []string {
	ids := make([]string, 0, len(writeIDs)+len(readIDs))
	for id := range writeIDs {
		ids = append(ids, id)
	}
	for id := range readIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
