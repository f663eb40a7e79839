package httpsession

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// envelopeReference decodes like decodeEnvelope but with encoding/json; the
// fast scanner must never accept what encoding/json rejects, and must agree
// with it on what it accepts.
func envelopeReference(data []byte) (created json.Number, values map[string]json.RawMessage, err error) {
	// A map, not a struct: encoding/json matches struct fields ignoring
	// case, aiohttp_session does not.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return "", nil, err
	}
	raw, ok := top["created"]
	if !ok || json.Unmarshal(raw, &created) != nil || created == "" {
		return "", nil, errBadEnvelope
	}
	if raw, ok := top["session"]; ok {
		if err := json.Unmarshal(raw, &values); err != nil {
			return "", nil, err
		}
	}
	return created, values, nil
}

var envelopeSeeds = []string{
	`{"created": 1700000000, "session": {"a": 1}}`,
	`{"created":1700000000,"session":{"f": 1.0, "g": 1e-05, "h": 1e+16, "lt": "<&>", "u": "\u00e9\u2028\ud83d\ude00", "n": null, "t": true, "l": [1, 2]}}`,
	`{"created":1,"session":{"k\"ey":{"deep":[{"x":[]}]}},"accessed":5,"lifetime":60,"persist":false,"flash":["hi"]}`,
	`{}`, `[]`, `null`, `{"created": "1"}`, `{"created": 1, "session": null}`,
	`{"created": 1, "session": {"nan": NaN}}`, `{"created":1,"session":{"a":01}}`,
	`{"created":1,"session":{"a":"\x"}}`, `{"created":1,"session":{"a":1}} x`,
	`{"created": 1.5e3, "session": {}}`, `{"created": 1, "session": {"i": -Infinity, "j": Infinity, "k": -I}}`, `{"created":1,"session":{"a":-0.0e+1}}`,
}

func TestDecodeEnvelopeMatchesEncodingJSON(t *testing.T) {
	for _, s := range envelopeSeeds {
		checkEnvelope(t, []byte(s))
	}
}

func FuzzEnvelopeDifferential(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkEnvelope(t, data) })
}

func checkEnvelope(t *testing.T, data []byte) {
	t.Helper()
	var rec Record
	err := decodeEnvelope(bytes.Clone(data), &rec)
	created, values, refErr := envelopeReference(data)
	if err != nil {
		return // stricter than encoding/json is allowed (e.g. quoted numbers)
	}
	if refErr != nil {
		if !bytes.Contains(data, []byte("NaN")) && !bytes.Contains(data, []byte("Infinity")) {
			t.Fatalf("fast decoder accepted %q, encoding/json rejects it: %v", data, refErr)
		}
		return
	}
	want, werr := parseUnixSeconds(created)
	if werr != nil || !want.Equal(rec.Created) {
		t.Fatalf("%q: created %v, want %v (%v)", data, rec.Created, want, werr)
	}
	if len(values) != len(rec.Values) {
		t.Fatalf("%q: %d values, want %d", data, len(rec.Values), len(values))
	}
	for k, v := range values {
		got, ok := rec.Values[k]
		if !ok || !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(v)) {
			t.Fatalf("%q: value %q = %q, want %q", data, k, got, v)
		}
	}
}

func TestEncodeValueFastPathsMatchEncodingJSON(t *testing.T) {
	for _, v := range []any{"", "plain", "q\"b\\s\n\r\t\b\f\x01<&>", "\u2028\u2029é😀", "bad\xffutf8", 0, -42, int64(1) << 62, true, false} {
		got, err := JSONCodec{}.EncodeValue(v)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("EncodeValue(%#v) = %s, want %s", v, got, want)
		}
	}
}

func TestPythonNaNKeepsTheRestOfTheSession(t *testing.T) {
	var rec Record
	data := []byte(`{"created": 1700000000, "session": {"nan": NaN, "inf": -Infinity, "a": 1}}`)
	if err := decodeEnvelope(data, &rec); err != nil {
		t.Fatal(err)
	}
	if string(rec.Values["nan"]) != "NaN" || string(rec.Values["inf"]) != "-Infinity" || string(rec.Values["a"]) != "1" {
		t.Fatalf("values %q", rec.Values)
	}
	var f float64
	if err := (JSONCodec{}).DecodeValue(rec.Values["nan"], &f); err == nil {
		t.Fatal("NaN decoded without error")
	}
}

// checkDecodeValue compares JSONCodec.DecodeValue's fast paths with
// encoding/json for every target type they cover.
func checkDecodeValue(t *testing.T, data []byte) {
	t.Helper()
	c := JSONCodec{}
	same := func(name string, got, want any, gotErr, wantErr error) {
		t.Helper()
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%s %q: err %v, encoding/json %v", name, data, gotErr, wantErr)
		}
		if gotErr == nil && fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Fatalf("%s %q: %#v, encoding/json %#v", name, data, got, want)
		}
	}
	var a1, a2 any
	same("any", a1, a2, c.DecodeValue(data, &a1), json.Unmarshal(data, &a2))
	same("any", a1, a2, nil, nil)
	var s1, s2 string
	e1, e2 := c.DecodeValue(data, &s1), json.Unmarshal(data, &s2)
	same("string", s1, s2, e1, e2)
	var i1, i2 int
	e1, e2 = c.DecodeValue(data, &i1), json.Unmarshal(data, &i2)
	same("int", i1, i2, e1, e2)
	var l1, l2 int64
	e1, e2 = c.DecodeValue(data, &l1), json.Unmarshal(data, &l2)
	same("int64", l1, l2, e1, e2)
	var b1, b2 bool
	e1, e2 = c.DecodeValue(data, &b1), json.Unmarshal(data, &b2)
	same("bool", b1, b2, e1, e2)
}

var decodeValueSeeds = []string{`"abc"`, `""`, `"a\"b"`, `"é"`, "\"\x01\"", `"\u00e9"`, `0`, `-0`, `007`, `-12`,
	`123456789012345`, `1234567890123456`, `9007199254740993`, `1.5`, `1e3`, `true`, `false`, `null`, `tru`, `-`, `[1]`, `{"a":1}`, ` 1`}

func TestDecodeValueFastPathsMatchEncodingJSON(t *testing.T) {
	for _, s := range decodeValueSeeds {
		checkDecodeValue(t, []byte(s))
	}
}

func FuzzDecodeValueDifferential(f *testing.F) {
	for _, s := range decodeValueSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecodeValue(t, data) })
}

// csBenchRecord is csBenchPayload's session as a Record, saved at accessed.
func csBenchRecord(b *testing.B, accessed time.Time) *Record {
	b.Helper()
	rec := &Record{Created: time.Unix(1700000000, 0), Accessed: accessed, Values: map[string][]byte{}}
	for k, v := range map[string]any{"user": "alice", "role": "admin", "lang": "en-GB", "theme": "dark", "csrf": "c5f3e1a0b9d2", "n": 0} {
		raw, err := JSONCodec{}.EncodeValue(v)
		if err != nil {
			b.Fatal(err)
		}
		rec.Values[k] = raw
	}
	return rec
}

// BenchmarkEncodeRecord: the envelope of a six-key session, saved on a
// whole second and on a fraction of one.
func BenchmarkEncodeRecord(b *testing.B) {
	for _, bc := range []struct {
		name     string
		accessed time.Time
	}{
		{"sec", time.Unix(1700000100, 0)},
		{"ms", time.Unix(1700000100, 123e6)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rec := csBenchRecord(b, bc.accessed)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (JSONCodec{}).EncodeRecord(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeRecord: the envelope of a six-key session, with accessed
// in whole seconds (every record before millisecond precision) and, when
// the codec writes them, with milliseconds.
func BenchmarkDecodeRecord(b *testing.B) {
	for _, name := range []string{"sec", "ms"} {
		b.Run(name, func(b *testing.B) {
			accessed := time.Unix(1700000100, 0)
			if name == "ms" {
				accessed = time.Unix(1700000100, 123e6)
			}
			data, err := JSONCodec{}.EncodeRecord(csBenchRecord(b, accessed))
			if err != nil {
				b.Fatal(err)
			}
			if name == "ms" && !bytes.Contains(data, []byte(`"accessed":1700000100.123`)) {
				b.Skipf("the codec writes %s", data)
			}
			b.ReportAllocs()
			for b.Loop() {
				var rec Record
				if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
