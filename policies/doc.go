// Package policies is airlock's policy language: YAML files of named
// policies whose rules are CEL expressions over one request.
//
// A policy file holds one policy (or several, as a YAML stream):
//
//	name: gcp-production                      # required, unique in the set
//	match: request.host.endsWith(".googleapis.com")   # optional CEL bool
//	default: deny                             # allow | deny | approve
//	rules:
//	  - name: no-prod-instance-delete         # unique in the policy
//	    when: gcp.method == "compute.instances.delete" && gcp.project == "acme-prod"
//	    action: deny                          # allow | deny | approve
//	    message: Deleting production instances is not allowed for agents.
//	  - name: prod-writes-need-a-human
//	    when: '!gcp.readonly && gcp.project == "acme-prod"'
//	    action: approve
//	    approvers: [group:sre]                # group:NAME or user:EMAIL; required
//	    min_approvals: 1                      # default 1
//	    grant: once                           # once | window; default once
//	    ttl: 15m                              # default: the configured one
//	masking:
//	  - name: gcp-secrets
//	    when: gcp.service in ["secretmanager", "iam"]   # optional
//	    fields: ["payload.data", "**.privateKeyData"]
//	    detectors: [private_key, my_token]
//	detectors:                                # custom detectors
//	  - name: my_token
//	    regex: 'tok_[A-Za-z0-9]{32}'
//	    keywords: [tok_]
//	    entropy: 3.5
//	tests:
//	  - name: agent cannot delete prod instance
//	    request: {method: DELETE, url: "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1"}
//	    identity: {subject: bot-1, groups: [ai-agents]}
//	    expect: deny                          # allow | deny | approve | invalid
//	    rule: no-prod-instance-delete        # optional
//
// A test means what the gateway does with its request: `expect: invalid`
// expects the gateway to refuse it before any policy sees it (an ambiguous
// path, an operation airlock cannot recognise), which the test's
// InputBuilder reports with [ErrRefusedBeforePolicy]; such a test names no
// rule.
//
// A policy whose default is approve takes approvers, min_approvals, grant
// and ttl at the top level. Unknown keys are errors.
//
// Expressions see the variables listed in [Variables] (request.*,
// identity.*, gcp.*, mcp.*, session.id, now), with the standard CEL macros and the
// strings, lists, sets, math, encoders, bindings (cel.bind) and optional
// extensions. Every expression is type-checked when the set loads and must
// give a bool; errors name the file, line, column, policy and rule.
//
// Semantics: a policy applies when its match holds (or fails to evaluate).
// Every rule whose when holds is a match and the strongest action wins,
// deny > approve > allow; with no match the policy's default applies. Across
// applicable policies the strongest result wins and, among equals, the
// first in file order decides. A rule that fails at run time counts as
// matched for deny and approve and unmatched for allow; a masking entry whose
// when fails applies. No applicable policy, or a context that ended, gives
// deny.
package policies
