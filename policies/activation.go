package policies

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// activation resolves the CEL variables of one request. Each value is built
// at most once, on first use, so a request pays only for what its policies
// read; activations are pooled so that evaluation builds no maps.
type activation struct {
	ctx    context.Context
	in     Input
	vals   [numVars]ref.Val
	groups stringList
	// lookupErr names the first resource lookup that failed.
	lookupErr string
	// project and target are looked up once, for every variable they answer.
	project    *ResourceProject
	projectErr error
	target     *ResourceTarget
	targetErr  error
	// unknown has bit i set when Variables[i] is not known (MayAllow):
	// it resolves to an unknown value, which CEL carries through.
	unknown uint64
}

var _ interpreter.Activation = (*activation)(nil)

var activationPool = sync.Pool{New: func() any { return new(activation) }}

func newActivation(ctx context.Context, in *Input) *activation {
	a := activationPool.Get().(*activation)
	a.ctx = ctx
	a.in = *in
	if a.in.Now.IsZero() {
		a.in.Now = time.Now()
	}
	return a
}

func (a *activation) release() {
	*a = activation{}
	activationPool.Put(a)
}

// slotOf maps a qualified variable name to its slot.
func slotOf(name string) int {
	switch name {
	case "request.method":
		return varRequestMethod
	case "request.host":
		return varRequestHost
	case "request.path":
		return varRequestPath
	case "request.query":
		return varRequestQuery
	case "request.headers":
		return varRequestHeaders
	case "request.body":
		return varRequestBody
	case "identity.subject":
		return varIdentitySubject
	case "identity.email":
		return varIdentityEmail
	case "identity.issuer":
		return varIdentityIssuer
	case "identity.groups":
		return varIdentityGroups
	case "identity.actor":
		return varIdentityActor
	case "identity.claims":
		return varIdentityClaims
	case "gcp.service":
		return varGCPService
	case "gcp.version":
		return varGCPVersion
	case "gcp.method":
		return varGCPMethod
	case "gcp.project":
		return varGCPProject
	case "gcp.location":
		return varGCPLocation
	case "gcp.resource":
		return varGCPResource
	case "gcp.readonly":
		return varGCPReadOnly
	case "gcp.long_running":
		return varGCPLongRunning
	case "gcp.params":
		return varGCPParams
	case "session.id":
		return varSessionID
	case "now":
		return varNow
	case "mcp.server":
		return varMCPServer
	case "mcp.method":
		return varMCPMethod
	case "mcp.tool":
		return varMCPTool
	case "mcp.name":
		return varMCPName
	case "mcp.arguments":
		return varMCPArguments
	case "mcp.readonly":
		return varMCPReadOnly
	case "mcp.destructive":
		return varMCPDestructive
	case "resource.available":
		return varResourceAvailable
	case "resource.kind":
		return varResourceKind
	case "resource.exists":
		return varResourceExists
	case "resource.labels":
		return varResourceLabels
	case "resource.tags":
		return varResourceTags
	case "resource.project.id":
		return varProjectID
	case "resource.project.number":
		return varProjectNumber
	case "resource.project.name":
		return varProjectName
	case "resource.project.exists":
		return varProjectExists
	case "resource.project.labels":
		return varProjectLabels
	case "resource.project.tags":
		return varProjectTags
	case "resource.project.ancestors":
		return varProjectAncestors
	case "resource.project.ancestor_names":
		return varProjectAncestorNames
	}
	return -1
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	slot := slotOf(name)
	if slot < 0 {
		return nil, false
	}
	if v := a.vals[slot]; v != nil {
		return v, true
	}
	if a.unknown&(1<<slot) != 0 {
		return types.NewUnknown(int64(slot), nil), true
	}
	v := a.build(slot)
	a.vals[slot] = v
	return v, true
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) build(slot int) ref.Val {
	in := &a.in
	switch slot {
	case varRequestMethod:
		return types.String(in.Request.Method)
	case varRequestHost:
		return types.String(in.Request.Host)
	case varRequestPath:
		return types.String(in.Request.Path)
	case varRequestQuery:
		if in.Request.Query == nil {
			return emptyQuery
		}
		return types.DefaultTypeAdapter.NativeToValue(in.Request.Query)
	case varRequestHeaders:
		if in.Request.Headers == nil {
			return emptyStringMap
		}
		return types.NewStringStringMap(types.DefaultTypeAdapter, in.Request.Headers)
	case varRequestBody:
		if in.Request.BodyError != "" {
			return types.NewErr("request.body cannot be read: %s", in.Request.BodyError)
		}
		if in.Request.Body == nil {
			return types.NullValue
		}
		return types.DefaultTypeAdapter.NativeToValue(in.Request.Body)
	case varIdentitySubject:
		return types.String(in.Identity.Subject)
	case varIdentityEmail:
		return types.String(in.Identity.Email)
	case varIdentityIssuer:
		return types.String(in.Identity.Issuer)
	case varIdentityGroups:
		a.groups.elems = in.Identity.Groups
		return &a.groups
	case varIdentityActor:
		return types.String(in.Identity.Actor)
	case varIdentityClaims:
		if in.Identity.Claims == nil {
			return emptyClaims
		}
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, in.Identity.Claims)
	case varGCPService:
		return types.String(in.GCP.Service)
	case varGCPVersion:
		return types.String(in.GCP.Version)
	case varGCPMethod:
		return types.String(in.GCP.Method)
	case varGCPProject:
		if in.Resources == nil {
			return types.String(in.GCP.Project)
		}
		id, err := in.Resources.ProjectID(a.ctx)
		if err != nil {
			return a.lookupFailed("gcp.project", err)
		}
		return types.String(id)
	case varGCPLocation:
		return types.String(in.GCP.Location)
	case varGCPResource:
		return types.String(in.GCP.Resource)
	case varGCPReadOnly:
		return types.Bool(in.GCP.ReadOnly)
	case varGCPLongRunning:
		return types.Bool(in.GCP.LongRunning)
	case varGCPParams:
		if in.GCP.Params == nil {
			return emptyStringMap
		}
		return types.NewStringStringMap(types.DefaultTypeAdapter, in.GCP.Params)
	case varSessionID:
		return types.String(in.SessionID)
	case varNow:
		return types.Timestamp{Time: in.Now}
	case varMCPServer:
		return types.String(in.MCP.Server)
	case varMCPMethod:
		return types.String(in.MCP.Method)
	case varMCPTool:
		return types.String(in.MCP.Tool)
	case varMCPName:
		return types.String(in.MCP.Name)
	case varMCPArguments:
		if in.MCP.Arguments == nil {
			return emptyClaims
		}
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, in.MCP.Arguments)
	case varMCPReadOnly:
		return types.Bool(in.MCP.ReadOnly)
	case varMCPDestructive:
		return types.Bool(in.MCP.Destructive)
	}
	if slot == varResourceAvailable {
		return types.Bool(in.Resources != nil)
	}
	if slot >= varResourceKind {
		return a.buildResource(slot)
	}
	return types.NullValue
}

// buildResource answers a resource.* variable, looking up only what it
// needs; a failed lookup is an error value and is remembered for
// Decision.Unavailable.
func (a *activation) buildResource(slot int) ref.Val {
	r := a.in.Resources
	name := Variables[slot].Name
	if r == nil {
		a.noteLookup(name + ": resource lookups are not configured (resources.credential)")
		return types.NewErr("%s: resource lookups are not configured", name)
	}
	switch slot {
	case varResourceKind, varResourceExists, varResourceLabels, varResourceTags:
		if a.target == nil && a.targetErr == nil {
			t, err := r.Target(a.ctx)
			a.target, a.targetErr = &t, err
		}
		if a.targetErr != nil {
			return a.lookupFailed(name, a.targetErr)
		}
		switch slot {
		case varResourceKind:
			return types.String(a.target.Kind)
		case varResourceExists:
			return types.Bool(a.target.Exists)
		case varResourceLabels:
			return stringMap(a.target.Labels)
		default:
			return stringMap(a.target.Tags)
		}
	case varProjectTags:
		tags, err := r.ProjectTags(a.ctx)
		if err != nil {
			return a.lookupFailed(name, err)
		}
		return stringMap(tags)
	case varProjectAncestors, varProjectAncestorNames:
		ids, names, err := r.Ancestry(a.ctx)
		if err != nil {
			return a.lookupFailed(name, err)
		}
		a.vals[varProjectAncestors] = types.NewStringList(types.DefaultTypeAdapter, ids)
		a.vals[varProjectAncestorNames] = types.NewStringList(types.DefaultTypeAdapter, names)
		return a.vals[slot]
	}
	if a.project == nil && a.projectErr == nil {
		p, err := r.Project(a.ctx)
		a.project, a.projectErr = &p, err
	}
	if a.projectErr != nil {
		return a.lookupFailed(name, a.projectErr)
	}
	p := a.project
	switch slot {
	case varProjectID:
		return types.String(p.ID)
	case varProjectNumber:
		return types.String(p.Number)
	case varProjectName:
		return types.String(p.Name)
	case varProjectExists:
		return types.Bool(p.Exists)
	case varProjectLabels:
		return stringMap(p.Labels)
	}
	return types.NullValue
}

func (a *activation) lookupFailed(name string, err error) ref.Val {
	a.noteLookup(name + ": " + err.Error())
	return types.NewErr("%s could not be looked up: %v", name, err)
}

func (a *activation) noteLookup(msg string) {
	if a.lookupErr == "" {
		a.lookupErr = msg
	}
}

func stringMap(m map[string]string) ref.Val {
	if m == nil {
		return emptyStringMap
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

var (
	emptyQuery     = types.DefaultTypeAdapter.NativeToValue(map[string][]string{})
	emptyStringMap = types.NewStringStringMap(types.DefaultTypeAdapter, map[string]string{})
	emptyClaims    = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{})
)

// stringList is a CEL list over a []string that answers `in`, size and
// indexing without converting every element; other operations go through
// cel-go's own list. It lives inside the pooled activation.
type stringList struct {
	elems []string
}

var _ traits.Lister = (*stringList)(nil)

func (l *stringList) base() traits.Lister {
	return types.NewStringList(types.DefaultTypeAdapter, l.elems)
}

// Contains implements traits.Container.
func (l *stringList) Contains(elem ref.Val) ref.Val {
	s, ok := elem.(types.String)
	if !ok {
		return l.base().Contains(elem)
	}
	for _, e := range l.elems {
		if e == string(s) {
			return types.True
		}
	}
	return types.False
}

// Size implements traits.Sizer.
func (l *stringList) Size() ref.Val { return types.Int(len(l.elems)) }

// Get implements traits.Indexer.
func (l *stringList) Get(index ref.Val) ref.Val { return l.base().Get(index) }

// Add implements traits.Adder.
func (l *stringList) Add(other ref.Val) ref.Val { return l.base().Add(other) }

// Iterator implements traits.Iterable.
func (l *stringList) Iterator() traits.Iterator { return l.base().Iterator() }

// ConvertToNative implements ref.Val.
func (l *stringList) ConvertToNative(t reflect.Type) (any, error) { return l.base().ConvertToNative(t) }

// ConvertToType implements ref.Val.
func (l *stringList) ConvertToType(t ref.Type) ref.Val { return l.base().ConvertToType(t) }

// Equal implements ref.Val.
func (l *stringList) Equal(other ref.Val) ref.Val { return l.base().Equal(other) }

// Type implements ref.Val.
func (l *stringList) Type() ref.Type { return types.ListType }

// Value implements ref.Val.
func (l *stringList) Value() any { return l.elems }

// IsZeroValue reports whether the list is empty.
func (l *stringList) IsZeroValue() bool { return len(l.elems) == 0 }
