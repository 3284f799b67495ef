package envoy

import (
	"testing"

	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	lua "github.com/yuin/gopher-lua"
)

// runGatewayLua runs the rendered gateway Lua's envoy_on_request against a
// stand-in of Envoy's stream handle (headers():get/replace, respond) and
// returns the resulting :authority and the status of a local reply, if any.
func runGatewayLua(t *testing.T, domains []string, authority string) (string, string) {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	if err := L.DoString(gatewayLua(domains)); err != nil {
		t.Fatalf("gateway Lua does not load: %v", err)
	}
	headers := map[string]string{":authority": authority}
	status := ""
	hdrs := L.NewTable()
	L.SetField(hdrs, "get", L.NewFunction(func(L *lua.LState) int {
		if v, ok := headers[L.CheckString(2)]; ok {
			L.Push(lua.LString(v))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	}))
	L.SetField(hdrs, "replace", L.NewFunction(func(L *lua.LState) int {
		headers[L.CheckString(2)] = L.CheckString(3)
		return 0
	}))
	handle := L.NewTable()
	L.SetField(handle, "headers", L.NewFunction(func(L *lua.LState) int {
		L.Push(hdrs)
		return 1
	}))
	L.SetField(handle, "respond", L.NewFunction(func(L *lua.LState) int {
		status = L.GetField(L.CheckTable(2), ":status").String()
		return 0
	}))
	if err := L.CallByParam(lua.P{Fn: L.GetGlobal("envoy_on_request"), Protect: true}, handle); err != nil {
		t.Fatalf("envoy_on_request: %v", err)
	}
	return headers[":authority"], status
}

func TestGatewayLua(t *testing.T) {
	domains := []string{"airlock.example.com", "GW.internal."}
	tests := []struct {
		authority, want, status string
	}{
		{"compute.airlock.example.com", "compute.googleapis.com", ""},
		{"Storage.AIRLOCK.example.com", "storage.googleapis.com", ""},
		{"iam.gw.internal", "iam.googleapis.com", ""},
		{"compute.googleapis.com", "compute.googleapis.com", ""},
		{"a.b.airlock.example.com", "a.b.airlock.example.com", "404"},
		{"airlock.example.com", "airlock.example.com", ""},
		{"evilairlock.example.com", "evilairlock.example.com", ""},
	}
	for _, tc := range tests {
		t.Run(tc.authority, func(t *testing.T) {
			got, status := runGatewayLua(t, domains, tc.authority)
			if got != tc.want || status != tc.status {
				t.Fatalf("authority %q status %q, want %q %q", got, status, tc.want, tc.status)
			}
		})
	}
}

// TestRenderedLuaIsGatewayLua: the Lua inside the rendered YAML is the code
// tested above, unchanged by templating and YAML block quoting.
func TestRenderedLuaIsGatewayLua(t *testing.T) {
	cfg := tlsConfig()
	_, hcm := parse(t, cfg)
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() != "envoy.filters.http.lua" {
			continue
		}
		var l luav3.Lua
		if err := f.GetTypedConfig().UnmarshalTo(&l); err != nil {
			t.Fatal(err)
		}
		if got, want := l.GetDefaultSourceCode().GetInlineString(), gatewayLua(cfg.Gateway.Domains); got != want {
			t.Fatalf("rendered Lua differs:\n%q\nwant\n%q", got, want)
		}
		return
	}
	t.Fatal("no lua filter rendered")
}
