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
		return types.String(in.GCP.Project)
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
	}
	return types.NullValue
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
