package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// VariableValue is one CEL variable as policies see it for an input.
type VariableValue struct {
	Name string
	// Value is the value as JSON (a timestamp as an RFC 3339 string); empty
	// when Error is set.
	Value string
	// Error says why the variable has no value (an unreadable body, a
	// resource lookup that failed).
	Error string
}

// Describe returns every variable of Variables as an evaluation of in
// would see it, in table order. Resource variables are looked up (through
// in.Resources), as an evaluation that reads them would.
func Describe(ctx context.Context, in Input) []VariableValue {
	if ctx == nil {
		ctx = context.Background()
	}
	a := newActivation(ctx, &in)
	defer a.release()
	out := make([]VariableValue, 0, len(Variables))
	for _, v := range Variables {
		val, _ := a.ResolveName(v.Name)
		out = append(out, describeValue(v.Name, val.(ref.Val)))
	}
	return out
}

func describeValue(name string, v ref.Val) VariableValue {
	if types.IsError(v) {
		return VariableValue{Name: name, Error: fmt.Sprint(v.Value())}
	}
	var native any
	switch x := v.(type) {
	case types.Timestamp:
		native = x.Time.UTC().Format(time.RFC3339Nano)
	case types.Null:
		native = nil
	default:
		native = jsonNative(v)
	}
	b, err := json.Marshal(native)
	if err != nil {
		return VariableValue{Name: name, Value: fmt.Sprintf("%v", v.Value())}
	}
	return VariableValue{Name: name, Value: string(b)}
}

// jsonNative converts a CEL value to plain Go values encoding/json writes.
func jsonNative(v ref.Val) any {
	switch x := v.Value().(type) {
	case map[string]string, map[string][]string, []string, map[string]any, []any, string, bool, int64, uint64, float64:
		return x
	}
	if l, ok := v.(interface {
		Size() ref.Val
		Get(ref.Val) ref.Val
	}); ok && v.Type() == types.ListType {
		n := int(l.Size().(types.Int))
		out := make([]any, n)
		for i := range n {
			out[i] = jsonNative(l.Get(types.Int(i)))
		}
		return out
	}
	return fmt.Sprint(v.Value())
}
