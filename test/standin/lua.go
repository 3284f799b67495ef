package standin

import (
	"errors"
	"fmt"
	"strconv"

	lua "github.com/yuin/gopher-lua"
	"gopkg.in/yaml.v3"
)

// luaFilterName is the HTTP filter whose inline Lua the Front runs.
const luaFilterName = "envoy.filters.http.lua"

// BootstrapLua returns the inline source of the Lua HTTP filter of a
// rendered Envoy bootstrap (YAML), or "" when it has none.
func BootstrapLua(bootstrap []byte) (string, error) {
	var doc any
	if err := yaml.Unmarshal(bootstrap, &doc); err != nil {
		return "", fmt.Errorf("standin: bootstrap: %w", err)
	}
	var found []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["name"] == luaFilterName {
				if tc, ok := x["typed_config"].(map[string]any); ok {
					if dsc, ok := tc["default_source_code"].(map[string]any); ok {
						if s, ok := dsc["inline_string"].(string); ok {
							found = append(found, s)
						}
					}
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", errors.New("standin: bootstrap has more than one Lua filter")
}

// luaResult is what envoy_on_request did to a request.
type luaResult struct {
	authority string
	local     *AuthzResult // set when the script answered with handle:respond
}

// runRequestLua runs envoy_on_request of src the way Envoy's Lua filter
// does, against a stream handle offering headers():get, headers():replace
// and respond, for a request whose :authority is authority.
func runRequestLua(src, authority string) (luaResult, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	if err := L.DoString(src); err != nil {
		return luaResult{}, fmt.Errorf("standin: lua filter does not load: %w", err)
	}
	res := luaResult{authority: authority}
	headers := map[string]string{":authority": authority}
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
		status, _ := strconv.Atoi(L.GetField(L.CheckTable(2), ":status").String())
		body := ""
		if L.GetTop() >= 3 {
			body = L.CheckString(3)
		}
		res.local = localReply(status, nil, body)
		return 0
	}))
	fn := L.GetGlobal("envoy_on_request")
	if fn == lua.LNil {
		return res, nil
	}
	if err := L.CallByParam(lua.P{Fn: fn, Protect: true}, handle); err != nil {
		// Envoy answers a script error with 500.
		return luaResult{local: localReply(500, nil, "")}, nil
	}
	res.authority = headers[":authority"]
	return res, nil
}
