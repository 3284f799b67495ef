package handoff

import "testing"

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"4c7e1f0a-0001-4b8e-9d6f-00000000000a": true,
		"4C7E1F0A-0001-4B8E-9D6F-00000000000A": true,
		"4c7e1f0a-0001-4b8e-9d6f-00000000000":  false,
		"4c7e1f0a-0001-4b8e-9d6f-00000000000g": false,
		"4c7e1f0a00001-4b8e-9d6f-00000000000a": false,
		"4c7e1f0a-0001-4b8e-9d6f_00000000000a": false,
		"":                                     false,
	} {
		if IsUUID(s) != want {
			t.Errorf("IsUUID(%q) = %v", s, !want)
		}
	}
}
