package httpbridge

import (
	"encoding/json"
	"testing"
)

// FuzzAntispamArgs feeds arbitrary bodies to the body → arguments mapping
// of every forwarded callback: it must never panic, must give one argument
// per field, each nil or of the field's type, and must accept every body
// whose fields all have their types.
func FuzzAntispamArgs(f *testing.F) {
	for i, cb := range antispamCallbacks {
		body, _ := moduleRequest(cb.name, "ok", false)
		b, _ := json.Marshal(body)
		f.Add(uint8(i), b)
	}
	f.Add(uint8(0), []byte(`{"user_id": "@a:x", "room_id": "!r:x", "is_invited": null}`))
	f.Add(uint8(0), []byte(`{"user": 5}`))
	f.Add(uint8(3), []byte(`[]`))
	f.Add(uint8(8), []byte(`{"event": {"content": {"body": 1e400}}}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		cb, ok := antispamCallbackOf(antispamCallbacks[int(which)%len(antispamCallbacks)].name)
		if !ok {
			t.Fatal("a table callback is unknown")
		}
		args, err := antispamArgs(cb, body)
		obj, objErr := jsonObject(body)
		if err != nil {
			if objErr == nil && allTyped(cb, obj) {
				t.Fatalf("refused a well-typed body %q: %v", body, err)
			}
			return
		}
		if objErr != nil {
			t.Fatalf("accepted %q, which is not a JSON object", body)
		}
		if len(args) != len(cb.fields) {
			t.Fatalf("%d arguments for %d fields", len(args), len(cb.fields))
		}
		for i, a := range args {
			if a != nil && !cb.fields[i].kind.matches(a) {
				t.Fatalf("argument %d is %T, want %s", i, a, cb.fields[i].kind)
			}
		}
	})
}

// allTyped reports whether every spelling present in obj has its type.
func allTyped(cb antispamCallback, obj map[string]any) bool {
	for _, f := range cb.fields {
		for _, name := range f.names {
			if v, ok := obj[name]; ok {
				if v != nil && !f.kind.matches(v) {
					return false
				}
				break
			}
		}
	}
	return true
}
