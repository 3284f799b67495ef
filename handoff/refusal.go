package handoff

import "encoding/json"

// ErrorInfoType is the @type of the ErrorInfo detail of a refusal.
const ErrorInfoType = "type.googleapis.com/google.rpc.ErrorInfo"

// ErrorDomain is the ErrorInfo domain of airlock's refusals.
const ErrorDomain = "airlock"

// ErrorInfo is the google.rpc.ErrorInfo detail that names why: the reason
// (POLICY_DENIED, APPROVAL_REQUIRED, ...) and its metadata (rule, approval
// id, request id).
type ErrorInfo struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata"`
}

// NewErrorInfo is airlock's ErrorInfo for reason.
func NewErrorInfo(reason string, metadata map[string]string) ErrorInfo {
	return ErrorInfo{Type: ErrorInfoType, Reason: reason, Domain: ErrorDomain, Metadata: metadata}
}

type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code    int         `json:"code"`
	Status  string      `json:"status"`
	Message string      `json:"message"`
	Details []ErrorInfo `json:"details,omitempty"`
}

// ErrorBody renders Google's JSON error shape, which gcloud and the client
// libraries print to the agent: {"error":{"code","message","status",
// "details":[ErrorInfo]}}. Without a reason there is no detail. Every
// refusal of airlock (ext_authz, ext_proc, the HTTP API) is written here.
func ErrorBody(code int, status, message, reason string, metadata map[string]string) []byte {
	p := errorPayload{Code: code, Message: message, Status: status}
	if reason != "" {
		p.Details = []ErrorInfo{NewErrorInfo(reason, metadata)}
	}
	b, err := json.Marshal(errorBody{Error: p})
	if err != nil {
		// Only strings are marshalled; this cannot happen.
		return []byte(`{"error":{"code":500,"status":"INTERNAL","message":"airlock: the refusal could not be rendered"}}`)
	}
	return b
}
