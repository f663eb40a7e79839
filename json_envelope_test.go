package httpsession

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
	`{"created":1,"session":{},"accessed":1700000000.123}`, `{"created":1,"session":{},"accessed":1700000000.1239999}`,
	`{"created":1,"session":{},"accessed":1.700000000001e9}`, `{"created":1,"session":{},"accessed":0.0009}`,
	`{"created":1,"session":{},"accessed":-0.5}`, `{"created":1,"session":{},"accessed":1234567890123456.7}`,
	`{"created":1,"session":{},"accessed":9.2e18}`, `{"created":1,"session":{},"accessed":1e-400}`,
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
	checkSessionValues(t, data, rec.Values)
	if want, tolerance, ok := accessedReference(data); ok {
		got := new(big.Int)
		if !rec.Accessed.IsZero() {
			got.SetInt64(rec.Accessed.Unix())
			got.Mul(got, big.NewInt(1000))
			got.Add(got, big.NewInt(int64(rec.Accessed.Nanosecond()/1e6)))
		}
		if want.Sign() < 0 {
			want.SetInt64(0) // not after the epoch: ignored
		}
		if diff := new(big.Int).Sub(got, want); diff.CmpAbs(big.NewInt(tolerance)) > 0 {
			t.Fatalf("%q: accessed %v (%v ms), want %v ms (±%d)", data, rec.Accessed, got, want, tolerance)
		}
	}
}

// checkSessionValues checks that a session loading data (its values in
// place, see values) sees what the Record's map holds.
func checkSessionValues(t *testing.T, data []byte, want map[string][]byte) {
	t.Helper()
	var rec Record
	var vals values
	if err := decodeSession(JSONCodec{}, bytes.Clone(data), &rec, &vals); err != nil {
		t.Fatalf("%q: decodeSession: %v, decodeEnvelope accepted it", data, err)
	}
	if vals.len() != len(want) {
		t.Fatalf("%q: session has %d values, the record %d", data, vals.len(), len(want))
	}
	for k, v := range want {
		if got, ok := vals.get(k); !ok || !bytes.Equal(got, v) {
			t.Fatalf("%q: session's %q = %q (%v), the record's %q", data, k, got, ok, v)
		}
	}
	if got := vals.record(); !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("%q: session's values %q, the record's %q", data, got, want)
	}
}

// accessedReference reads the only "accessed" member of an envelope exactly,
// with math/big, in Unix milliseconds truncated toward minus infinity, and
// says how far decodeEnvelope may be from it: not at all for the forms it
// parses digit by digit, within float64's precision for the others. ok is
// false when there is no single "accessed" member, or its number has an
// exponent too large for math/big to expand cheaply.
func accessedReference(data []byte) (ms *big.Int, tolerance int64, ok bool) {
	if bytes.Count(data, []byte("accessed")) != 1 {
		return nil, 0, false // duplicates, or escaped or nested keys
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return nil, 0, false
	}
	num := string(bytes.TrimSpace(top["accessed"]))
	if num == "" {
		return nil, 0, false
	}
	mant, exp, hasExp := strings.Cut(strings.ToLower(num), "e")
	if hasExp {
		e, err := strconv.Atoi(exp)
		if err != nil || e < -40 || e > 40 {
			return nil, 0, false
		}
	}
	r, good := new(big.Rat).SetString(num)
	if !good {
		return nil, 0, false
	}
	r.Mul(r, big.NewRat(1000, 1))
	ms = new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: the floor, Denom > 0
	intPart, _, _ := strings.Cut(strings.TrimPrefix(mant, "-"), ".")
	if hasExp || len(intPart) > 15 && strings.Contains(mant, ".") {
		f, _ := strconv.ParseFloat(num, 64)
		ulp := math.Nextafter(math.Abs(f), math.Inf(1)) - math.Abs(f)
		tolerance = 1 + int64(math.Ceil(ulp*1000))
	}
	return ms, tolerance, true
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
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if s, ok := v.(string); ok && !utf8.ValidString(s) {
			// Invalid UTF-8 becomes U+FFFD: Go 1.26's encoding/json writes
			// it escaped, as EncodeValue does on every release, and Go
			// 1.27's writes the character itself. Both decode alike.
			want = bytes.ReplaceAll(want, []byte("\uFFFD"), []byte(`\ufffd`))
		}
		if !bytes.Equal(got, want) {
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

// TestEnvelopeAccessedMilliseconds: "accessed" is written to the
// millisecond, an integer on a whole second, and read back to the
// millisecond, whichever way it was written.
func TestEnvelopeAccessedMilliseconds(t *testing.T) {
	c := JSONCodec{}
	for _, tc := range []struct {
		accessed time.Time
		json     string // the "accessed" member written
		read     time.Time
	}{
		{time.Unix(1700000000, 123e6), `1700000000.123`, time.Unix(1700000000, 123e6)},
		{time.Unix(1700000000, 123456789), `1700000000.123`, time.Unix(1700000000, 123e6)},
		{time.Unix(1700000000, 5e8), `1700000000.500`, time.Unix(1700000000, 5e8)},
		{time.Unix(1700000000, 7e6), `1700000000.007`, time.Unix(1700000000, 7e6)},
		{time.Unix(1700000000, 999999999), `1700000000.999`, time.Unix(1700000000, 999e6)},
		{time.Unix(1700000000, 0), `1700000000`, time.Unix(1700000000, 0)},
		{time.Unix(1700000000, 999999), `1700000000`, time.Unix(1700000000, 0)},
		{time.Unix(0, 1e6), `0.001`, time.Unix(0, 1e6)},
		// Not after the epoch: written faithfully, read as no activity.
		{time.Unix(-2, 5e8), `-1.500`, time.Time{}},
		{time.Unix(-1, 5e8), `-0.500`, time.Time{}},
		{time.Unix(-1, 0), `-1`, time.Time{}},
	} {
		rec := Record{Created: time.Unix(1700000000, 0), Accessed: tc.accessed, Values: map[string][]byte{"a": []byte("1")}}
		data, err := c.EncodeRecord(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"created":1700000000,"session":{"a":1},"accessed":` + tc.json + `}`; string(data) != want {
			t.Errorf("accessed %v encoded as %s, want %s", tc.accessed, data, want)
		}
		var out Record
		if err := c.DecodeRecord(data, &out); err != nil {
			t.Fatalf("DecodeRecord(%s): %v", data, err)
		}
		if !out.Accessed.Equal(tc.read) || out.Accessed.IsZero() != tc.read.IsZero() {
			t.Errorf("%s read back as %v, want %v", data, out.Accessed, tc.read)
		}
	}

	for _, tc := range []struct {
		json string
		want time.Time
	}{
		// Integers, as every record before milliseconds holds them.
		{`1700000000`, time.Unix(1700000000, 0)},
		{`1`, time.Unix(1, 0)},
		{`9223372036854775807`, time.Unix(1<<63-1, 0)},
		// Fractions of any length, truncated to the millisecond.
		{`1700000000.5`, time.Unix(1700000000, 5e8)},
		{`1700000000.12`, time.Unix(1700000000, 120e6)},
		{`1700000000.123456`, time.Unix(1700000000, 123e6)},
		{`1700000000.1239999999`, time.Unix(1700000000, 123e6)},
		{`1700000000.0`, time.Unix(1700000000, 0)},
		{`1700000000.001`, time.Unix(1700000000, 1e6)},
		{`1700000000.0009`, time.Unix(1700000000, 0)},
		{`0.5`, time.Unix(0, 5e8)},
		// Exponents and long integer parts, through float64.
		{`1.7e9`, time.Unix(1700000000, 0)},
		{`1.7000000005E+9`, time.Unix(1700000000, 5e8)},
		{`1.700000000001e9`, time.Unix(1700000000, 1e6)},
		{`17000000001239e-4`, time.Unix(1700000000, 123e6)},
		{`1234567890123456.5`, time.Unix(1234567890123456, 5e8)},
		{`1e18`, time.Unix(1e18, 0)},
		// Not after the epoch at millisecond precision: no activity.
		{`0`, time.Time{}},
		{`-0`, time.Time{}},
		{`-5`, time.Time{}},
		{`-1.5`, time.Time{}},
		{`-0.0`, time.Time{}},
		{`0.0009`, time.Time{}},
		{`0.000`, time.Time{}},
		{`-1e3`, time.Time{}},
		{`1e-400`, time.Time{}},
		{`-9223372036854775808`, time.Time{}},
	} {
		data := `{"created": 1700000000, "session": {}, "accessed": ` + tc.json + `}`
		var rec Record
		if err := c.DecodeRecord([]byte(data), &rec); err != nil {
			t.Errorf("accessed %s: %v", tc.json, err)
		} else if !rec.Accessed.Equal(tc.want) || rec.Accessed.IsZero() != tc.want.IsZero() {
			t.Errorf("accessed %s = %v, want %v", tc.json, rec.Accessed, tc.want)
		}
	}

	// Not numbers, or seconds beyond int64: the record is refused.
	for _, bad := range []string{`"1700000000"`, `"1700000000.123"`, `true`, `null`, `[1]`, `{}`, `NaN`, `Infinity`, `-Infinity`,
		`1700000000.`, `.5`, `1.5.5`, `1e`, `+1`, `01.5`, `0x10`, `1_000`, `1700000000,123`,
		`9223372036854775808`, `-9223372036854775809`, `99999999999999999999.5`, `9.3e18`, `-9.3e18`, `1e400`, `-1e400`} {
		data := `{"created": 1700000000, "session": {}, "accessed": ` + bad + `}`
		var rec Record
		if err := c.DecodeRecord([]byte(data), &rec); err == nil {
			t.Errorf("accessed %s accepted: %v", bad, rec.Accessed)
		} else if !errors.Is(err, ErrDecode) {
			t.Errorf("accessed %s: %v, want ErrDecode", bad, err)
		}
	}

	// A later "accessed" that is not after the epoch leaves an earlier one
	// standing, as before milliseconds.
	var dup Record
	if err := c.DecodeRecord([]byte(`{"created":1,"session":{},"accessed":5.5,"accessed":-1}`), &dup); err != nil ||
		!dup.Accessed.Equal(time.Unix(5, 5e8)) {
		t.Errorf("duplicate accessed: %v, %v", dup.Accessed, err)
	}

	// created stays whole seconds: aiohttp_session reads it as an int.
	data, _ := c.EncodeRecord(&Record{Created: time.Unix(1700000000, 999e6), Accessed: time.Unix(1700000000, 999e6)})
	if want := `{"created":1700000000,"session":{},"accessed":1700000000.999}`; string(data) != want {
		t.Errorf("encoded %s, want %s", data, want)
	}
}

// TestEnvelopeAccessedAllocationFree: the forms records hold, integers and
// digits.ddd, parse without allocating, and a record with milliseconds
// costs no more allocations to decode than one without.
func TestEnvelopeAccessedAllocationFree(t *testing.T) {
	for _, num := range []string{"1700000000", "1700000000.123", "1700000000.5", "1700000000.123456"} {
		b := []byte(num)
		if n := testing.AllocsPerRun(100, func() {
			if tm, err := parseUnixMilli(b); err != nil || tm.IsZero() {
				t.Fatalf("parseUnixMilli(%s) = %v, %v", num, tm, err)
			}
		}); n != 0 {
			t.Errorf("parseUnixMilli(%s): %.0f allocations", num, n)
		}
	}
	decodeAllocs := func(accessed string) float64 {
		data := []byte(`{"created":1700000000,"session":{"user":"alice","n":3},"accessed":` + accessed + `}`)
		return testing.AllocsPerRun(100, func() {
			var rec Record
			if err := decodeEnvelope(data, &rec); err != nil {
				t.Fatal(err)
			}
		})
	}
	if sec, ms := decodeAllocs("1700000100"), decodeAllocs("1700000100.123"); ms > sec {
		t.Errorf("decoding a record: %.0f allocations with milliseconds, %.0f without", ms, sec)
	}
}

// TestEnvelopeKeysSorted: a record's session keys are written in sorted
// (byte, so code point) order, so the same session always gives the same
// bytes and the same cookie, whatever order Go's map iterates in.
func TestEnvelopeKeysSorted(t *testing.T) {
	rec := Record{Created: time.Unix(1700000000, 0), Values: map[string][]byte{}}
	var keys []string
	for i := range 40 {
		k := fmt.Sprintf("k%02d", (i*17)%40)
		keys = append(keys, k)
		rec.Values[k] = []byte(strconv.Itoa(i))
	}
	rec.Values["é"], rec.Values["Z"], rec.Values[""] = []byte("1"), []byte("2"), []byte("3")
	keys = append(keys, "é", "Z", "")
	slices.Sort(keys)
	var want strings.Builder
	want.WriteString(`{"created":1700000000,"session":{`)
	for i, k := range keys {
		if i > 0 {
			want.WriteByte(',')
		}
		fmt.Fprintf(&want, "%q:%s", k, rec.Values[k])
	}
	want.WriteString("}}")
	for range 5 {
		got, err := JSONCodec{}.EncodeRecord(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want.String() {
			t.Fatalf("record\n%s\nwant keys sorted:\n%s", got, want.String())
		}
	}
}
