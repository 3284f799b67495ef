package catalogen

import (
	"reflect"
	"testing"
)

func TestCamelWords(t *testing.T) {
	tests := map[string][]string{
		"listXpnHosts":         {"list", "xpn", "hosts"},
		"get":                  {"get"},
		"batchGetByDataFilter": {"batch", "get", "by", "data", "filter"},
		"":                     nil,
	}
	for in, want := range tests {
		if got := camelWords(in); !reflect.DeepEqual(got, want) {
			t.Errorf("camelWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOperationsCollection(t *testing.T) {
	tests := map[string]bool{
		"compute.zoneOperations.wait":                   true,
		"compute.globalOrganizationOperations.wait":     true,
		"aiplatform.projects.locations.operations.wait": true,
		"compute.instances.wait":                        false,
		"wait":                                          false,
		"remotebuildexecution.operations.waitExecution": true,
	}
	for id, want := range tests {
		if got := operationsCollection(id); got != want {
			t.Errorf("operationsCollection(%q) = %v, want %v", id, got, want)
		}
	}
}

// A method wait that is not on an operations collection (waitExecution
// streams a build's result; things.wait is unknown) stays a write.
func TestWaitReadsOnlyOnOperations(t *testing.T) {
	for id, want := range map[string]bool{
		"compute.zoneOperations.wait":                   true,
		"remotebuildexecution.operations.waitExecution": false,
		"x.things.wait":                                 false,
	} {
		if got := ReadOnly("POST", id); got != want {
			t.Errorf("ReadOnly(POST, %s) = %v, want %v", id, got, want)
		}
	}
}
