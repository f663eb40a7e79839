package httpsession

// Tests of codec.go: JSONCodec's records, its own and those Python's
// aiohttp_session writes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestCSJSONCodecRoundTrip: every metadata field and awkward keys survive
// EncodeRecord → DecodeRecord, and the output is valid JSON.
func TestCSJSONCodecRoundTrip(t *testing.T) {
	var c JSONCodec
	keys := []string{"plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\n\t", "ls\u2028ps\u2029",
		"<&>", "é日本😀", "", " "}
	persist := false
	in := Record{
		Created:    time.Unix(1700000000, 0),
		Accessed:   time.Unix(1700000123, 456e6),
		Lifetime:   90 * 24 * time.Hour,
		Persistent: &persist,
		Values:     map[string][]byte{},
		Flashes:    []string{"saved", `"quoted"`, "line\nbreak", "\u2028", "é"},
	}
	for i, k := range keys {
		v, err := c.EncodeValue(map[string]any{"i": i, "k": k})
		if err != nil {
			t.Fatal(err)
		}
		in.Values[k] = v
	}
	data, err := c.EncodeRecord(&in)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("EncodeRecord wrote invalid JSON: %s", data)
	}
	if bytes.Contains(data, []byte("\u2028")) || bytes.Contains(data, []byte("\u2029")) {
		t.Errorf("raw U+2028/U+2029 in %s", data)
	}
	var out Record
	if err := c.DecodeRecord(data, &out); err != nil {
		t.Fatalf("DecodeRecord(%s): %v", data, err)
	}
	if d := recordDiff(&in, &out, sameJSON); d != "" {
		t.Error(d)
	}

	// Python's json.loads reads it too (same field names and structure).
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"created", "session", "accessed", "lifetime", "persist", "flash"} {
		if _, ok := generic[f]; !ok {
			t.Errorf("field %q missing from %s", f, data)
		}
	}

	// Defaults are omitted and read back as defaults.
	minimal := Record{Created: time.Unix(5, 0), Values: map[string][]byte{"a": []byte("1")}}
	data, _ = c.EncodeRecord(&minimal)
	if string(data) != `{"created":5,"session":{"a":1}}` {
		t.Errorf("minimal record = %s", data)
	}
	out = Record{}
	if err := c.DecodeRecord(data, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Accessed.IsZero() || out.Lifetime != 0 || out.Persistent != nil || len(out.Flashes) != 0 {
		t.Errorf("defaults decoded as %+v", out)
	}

	// Invalid UTF-8 in a key becomes U+FFFD, as encoding/json does.
	bad := Record{Created: time.Unix(1, 0), Values: map[string][]byte{"bad\xffkey": []byte("1")}}
	data, _ = c.EncodeRecord(&bad)
	if !utf8.Valid(data) || !json.Valid(data) {
		t.Fatalf("invalid UTF-8 key encoded as %q", data)
	}
	out = Record{}
	if err := c.DecodeRecord(data, &out); err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Values["bad\uFFFDkey"]; !ok || len(out.Values) != 1 {
		t.Errorf("invalid UTF-8 key decoded as %q", keysOf(out.Values))
	}

	// Values are not HTML-escaped, matching Python's json.dumps.
	if v, _ := c.EncodeValue("<&>"); string(v) != `"<&>"` {
		t.Errorf(`EncodeValue("<&>") = %s`, v)
	}
}

// TestCSJSONCodecPython: what Python writes (with spaces, NaN, floats),
// and what must be refused: "{}" (aiohttp's invalidated session), no
// created time, non-objects, malformed JSON.
func TestCSJSONCodecPython(t *testing.T) {
	var c JSONCodec
	// §6.1 example without its NaN member.
	py := `{"created": 1700000000, "session": {"f": 1.0, "g": 1e-05, "h": 1e+16, "lt": "<&>", "u": "\u00e9\u2028\ud83d\ude00", "n": null, "t": true, "l": [1, 2]}}`
	var rec Record
	if err := c.DecodeRecord([]byte(py), &rec); err != nil {
		t.Fatalf("Python envelope: %v", err)
	}
	if !rec.Created.Equal(time.Unix(1700000000, 0)) || len(rec.Values) != 8 {
		t.Fatalf("decoded %v with %d values", rec.Created, len(rec.Values))
	}
	want := map[string]any{"f": 1.0, "g": 1e-05, "h": 1e16, "lt": "<&>", "u": "é\u2028😀", "n": nil, "t": true, "l": []any{1.0, 2.0}}
	for k, w := range want {
		var v any
		if err := c.DecodeValue(rec.Values[k], &v); err != nil || fmt.Sprint(v) != fmt.Sprint(w) {
			t.Errorf("%s = %#v (%v), want %#v", k, v, err, w)
		}
	}

	// The same with Python's NaN, Infinity and -Infinity values: the
	// envelope is accepted and keeps the rest of the session; those values
	// alone fail to decode (encoding/json has no NaN).
	nan := strings.Replace(py, `"l": [1, 2]}`, `"l": [1, 2], "nan": NaN, "inf": Infinity, "ninf": -Infinity}`, 1)
	var nrec Record
	if err := c.DecodeRecord([]byte(nan), &nrec); err != nil {
		t.Fatalf("envelope with NaN: %v", err)
	}
	if len(nrec.Values) != 11 || string(nrec.Values["f"]) != "1.0" {
		t.Errorf("envelope with NaN: values %q", nrec.Values)
	}
	for _, k := range []string{"nan", "inf", "ninf"} {
		var f float64
		if err := c.DecodeValue(nrec.Values[k], &f); err == nil {
			t.Errorf("%s: decoded %v without error", k, f)
		}
	}
	for _, bad := range []string{
		`{"created": NaN, "session": {}}`,
		`{"created": Infinity, "session": {}}`,
		`{"created": 1700000000, "session": {"x": nan}}`,
		`{"created": 1700000000, "session": {"x": NaNa}}`,
		`{}`,
		`{"session": {"a": 1}}`,
		`[]`, `[{"created": 1, "session": {}}]`, `"x"`, `1`, `null`, `true`, ``, ` `,
		`{"created": 1700000000, "session": {"a": 1}`,
		`{"created": 1700000000, "session": {"a": 1}} x`,
		`{"created": 1700000000, "session": {"a": 1}}{}`,
		`{"created": -1.5, "session": {}}`,
		`{"created": 1e400, "session": {}}`,
		`{"created": true, "session": {}}`,
		`{"created": 1700000000, "session": [1]}`,
		`{"created": 1700000000, "session": {"a": }}`,
		`{"created": 1700000000, "session": {"a": 01}}`,
		`{"created": 1700000000, "session": {"a": "\x"}}`,
		`{"created": 1700000000, "session": {"a": "` + "\x01" + `"}}`,
		`{"created": 1700000000, "session": {}, "flash": "x"}`,
		`{"created": 1700000000, "session": {}, "persist": 1}`,
		`{"created": 1700000000, "session": {}, "accessed": "1700000000"}`,
		`{"created": 1700000000, "session": {}, "accessed": 1700000000.}`,
		`{"created": 1700000000, "session": {}, "accessed": .5}`,
		`{"created": 1700000000, "session": {}, "accessed": 1e400}`,
		`{"created": 1700000000, "session": {}, "accessed": 99999999999999999999}`,
		`{"created": 1700000000, "session": {}, "accessed": NaN}`,
	} {
		var rec Record
		if err := c.DecodeRecord([]byte(bad), &rec); err == nil {
			t.Errorf("DecodeRecord(%s) accepted: %+v", bad, rec)
		}
	}
	var rec2 Record
	if err := c.DecodeRecord([]byte(`{}`), &rec2); !errors.Is(err, ErrDecode) {
		t.Errorf("DecodeRecord({}) = %v, want ErrDecode", err)
	}

	// created may be a float (Python's time.time()); it is truncated.
	for _, s := range []string{"1700000000.75", "1.7e9", "1700000000.0"} {
		var rec Record
		if err := c.DecodeRecord([]byte(`{"created": `+s+`, "session": {}}`), &rec); err != nil {
			t.Errorf("created %s: %v", s, err)
		} else if rec.Created.Unix() != 1700000000 {
			t.Errorf("created %s = %d", s, rec.Created.Unix())
		}
	}

	// Metadata written by another writer, with spaces.
	meta := `{"created": 1700000000, "session": {}, "accessed": 1700000500.25, "lifetime": 3600, "persist": true, "flash": ["a", "b"], "other": {"x": [1, {"y": null}]}}`
	var m Record
	if err := c.DecodeRecord([]byte(meta), &m); err != nil {
		t.Fatal(err)
	}
	if !m.Accessed.Equal(time.Unix(1700000500, 250e6)) || m.Lifetime != time.Hour || m.Persistent == nil || !*m.Persistent ||
		len(m.Flashes) != 2 || m.Flashes[1] != "b" || len(m.Values) != 0 {
		t.Errorf("metadata decoded as %+v", m)
	}
	// Out-of-range metadata falls back to the defaults.
	var o Record
	if err := c.DecodeRecord([]byte(`{"created": 1, "session": {}, "accessed": -5, "lifetime": 99999999999999}`), &o); err != nil {
		t.Fatal(err)
	}
	if !o.Accessed.IsZero() || o.Lifetime != 0 {
		t.Errorf("out-of-range metadata decoded as accessed %v lifetime %v", o.Accessed, o.Lifetime)
	}
}
