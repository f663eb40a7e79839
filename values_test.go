package httpsession

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// loadValues decodes the envelope {"created":1,"session":<object>} as a
// session load does.
func loadValues(t *testing.T, object string) *values {
	t.Helper()
	var rec Record
	vals := new(values)
	if err := decodeSession(JSONCodec{}, []byte(`{"created":1,"session":`+object+`}`), &rec, vals); err != nil {
		t.Fatalf("%s: %v", object, err)
	}
	return vals
}

// valuesOf is vals as a map of strings, for comparisons.
func valuesOf(vals *values) map[string]string {
	out := map[string]string{}
	all := vals.appendAll(nil)
	for i := range all {
		out[all[i].name()] = string(all[i].raw)
	}
	return out
}

func TestValuesLoadedInPlace(t *testing.T) {
	for _, object := range []string{
		`{"a":1,"b":"x","c":[1,2]}`, // as Go writes them: sorted
		`{"c":[1,2],"a":1,"b":"x"}`, // as Python may: in insertion order
		`{ "a" : 1 , "b":"x","c" : [1,2] }`,
	} {
		vals := loadValues(t, object)
		if vals.m != nil || len(vals.spans) != 3 {
			t.Fatalf("%s: not read in place: %+v", object, vals)
		}
		want := map[string]string{"a": "1", "b": `"x"`, "c": "[1,2]"}
		if got := valuesOf(vals); !maps.Equal(got, want) || vals.len() != 3 {
			t.Errorf("%s: %v (len %d), want %v", object, got, vals.len(), want)
		}
		for k, v := range want {
			if raw, ok := vals.get(k); !ok || string(raw) != v {
				t.Errorf("%s: get(%q) = %s, %v", object, k, raw, ok)
			}
		}
		if _, ok := vals.get("d"); ok {
			t.Errorf("%s: get of an absent key found it", object)
		}
	}
}

// A record whose keys a byte comparison could get wrong is read into a map:
// escaped or non-ASCII keys (decoded), a repeated key (the last wins, as
// encoding/json has it), more than flatMax keys.
func TestValuesLoadedIntoMap(t *testing.T) {
	many := make([]string, flatMax+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%02d":%d`, i, i)
	}
	for _, tc := range []struct {
		object string
		key    string
		want   string
		n      int
	}{
		{`{"a\u0062":1}`, "ab", "1", 1},
		{`{"a\"b":1,"c":2}`, `a"b`, "1", 2},
		{`{"é":1}`, "é", "1", 1},
		{`{"b":1,"a":2,"b":3}`, "b", "3", 2},
		{`{"a":1,"a":2}`, "a", "2", 1},
		{"{" + strings.Join(many, ",") + "}", "k16", "16", flatMax + 1},
	} {
		vals := loadValues(t, tc.object)
		if vals.m == nil {
			t.Errorf("%s: read in place", tc.object)
		}
		if raw, ok := vals.get(tc.key); !ok || string(raw) != tc.want || vals.len() != tc.n {
			t.Errorf("%s: get(%q) = %s, %v, len %d; want %s, len %d", tc.object, tc.key, raw, ok, vals.len(), tc.want, tc.n)
		}
	}
}

// Changes go on top of the loaded values: set replaces or adds, delete
// hides, and the record written from them is what a map would give.
func TestValuesChanges(t *testing.T) {
	vals := loadValues(t, `{"a":1,"b":2,"c":3}`)
	loaded := bytes.Clone(vals.rec)
	vals.set("b", []byte("20"))
	vals.set("d", []byte("4"))
	vals.delete("a")
	vals.delete("zz") // absent: nothing to hide
	want := map[string]string{"b": "20", "c": "3", "d": "4"}
	if got := valuesOf(vals); !maps.Equal(got, want) || vals.len() != 3 {
		t.Fatalf("%v (len %d), want %v", got, vals.len(), want)
	}
	if _, ok := vals.get("a"); ok {
		t.Error("a deleted key is still there")
	}
	vals.set("a", []byte("10")) // back again
	if raw, ok := vals.get("a"); !ok || string(raw) != "10" || vals.len() != 4 {
		t.Errorf("a key set after its delete: %s, %v, len %d", raw, ok, vals.len())
	}
	if !bytes.Equal(vals.rec, loaded) {
		t.Errorf("the loaded record changed: %s", vals.rec)
	}
	vals.set("e", nil) // a codec may encode a value as nothing: still a value
	if raw, ok := vals.get("e"); !ok || len(raw) != 0 || vals.len() != 5 {
		t.Errorf("an empty encoding: %q, %v, len %d", raw, ok, vals.len())
	}
	vals.delete("e")
	data, err := encodeEnvelopeValues(&Record{Created: time.Unix(1, 0)}, vals)
	if err != nil || string(data) != `{"created":1,"session":{"a":10,"b":20,"c":3,"d":4}}` {
		t.Errorf("encoded %s, %v", data, err)
	}
}

// Past flatMax changed keys the values move to a map, keeping all of them.
func TestValuesGrowIntoMap(t *testing.T) {
	vals := loadValues(t, `{"a":1,"b":2}`)
	vals.delete("a")
	want := map[string]string{"b": "2"}
	for i := range flatMax + 2 {
		k := fmt.Sprintf("k%02d", i)
		vals.set(k, []byte(fmt.Sprint(i)))
		want[k] = fmt.Sprint(i)
	}
	if vals.m == nil {
		t.Fatalf("%d changed keys and still a list", flatMax+2)
	}
	if got := valuesOf(vals); !maps.Equal(got, want) || vals.len() != len(want) {
		t.Errorf("%v (len %d), want %v", got, vals.len(), want)
	}
	vals.delete("b")
	if _, ok := vals.get("b"); ok || vals.len() != len(want)-1 {
		t.Errorf("delete in the map: len %d", vals.len())
	}
}

// Reading a session's values allocates one pointer-free slice, whatever
// the number of keys up to flatMax; the keys are compared in the record.
func TestValuesLoadAllocations(t *testing.T) {
	data := []byte(`{"created":1,"session":{"csrf":"c5f3e1a0b9d2","lang":"en-GB","n":0,"role":"admin","theme":"dark","user":"alice"}}`)
	allocs := testing.AllocsPerRun(100, func() {
		var rec Record
		var vals values
		if err := decodeSession(JSONCodec{}, data, &rec, &vals); err != nil {
			t.Fatal(err)
		}
		if raw, ok := vals.get("user"); !ok || string(raw) != `"alice"` {
			t.Fatalf("user = %s", raw)
		}
	})
	if allocs != 1 {
		t.Errorf("a load of six values allocates %v times, want 1", allocs)
	}
}

// The Session's map API over loaded values, changed in the request.
func TestSessionKeysAfterChanges(t *testing.T) {
	chk := &handlerErrors{}
	h := newMiddleware(t, NewInsecureCookieStore())(withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		if got := s.Keys(); !slices.Equal(got, []string{"a", "b", "c"}) || s.Len() != 3 {
			chk.errorf("loaded: Keys %q, Len %d", got, s.Len())
		}
		s.Delete("a")
		if err := s.Set("d", 4); err != nil {
			chk.errorf("Set: %v", err)
		}
		if got := s.Keys(); !slices.Equal(got, []string{"b", "c", "d"}) || s.Len() != 3 || s.Has("a") {
			chk.errorf("changed: Keys %q, Len %d, Has(a) %v", got, s.Len(), s.Has("a"))
		}
		s.Clear()
		if s.Len() != 0 || len(s.Keys()) != 0 || s.Has("b") {
			chk.errorf("after Clear: Len %d, Keys %q", s.Len(), s.Keys())
		}
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", DefaultCookieName+"="+insecureToken(t, time.Now(), map[string]any{"b": 1, "a": 2, "c": 3}))
	h.ServeHTTP(httptest.NewRecorder(), req)
	chk.report(t)
}
