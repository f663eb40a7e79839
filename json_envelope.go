// The session record's envelope, JSONCodec's record format: aiohttp_session's
//
//	{"created": 1700000000, "session": {"key": value, ...}}
//
// (created in whole Unix seconds; aiohttp_session reads it as an int), plus
// httpsession's own top-level fields, "accessed" (Unix seconds to the
// millisecond), "lifetime", "persist" and "flash", which aiohttp_session
// ignores and drops when it writes. Encoding and decoding live together here
// so the two cannot drift apart.

package httpsession

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// encodeEnvelope writes rec as the envelope. It appends the pre-encoded
// values instead of marshalling a map, so nothing is encoded twice. The
// session's keys are written in sorted order (by bytes, which for UTF-8 is
// code point order), so one session always gives the same bytes.
func encodeEnvelope(rec *Record) ([]byte, error) {
	vals := values{m: rec.Values}
	return encodeEnvelopeValues(rec, &vals)
}

// encodeEnvelopeValues is encodeEnvelope for a session: the values come
// from vals, and rec.Values is not read.
func encodeEnvelopeValues(rec *Record, vals *values) ([]byte, error) {
	b := make([]byte, 0, 64+valuesSize(vals))
	b = append(b, `{"created":`...)
	b = strconv.AppendInt(b, rec.Created.Unix(), 10)
	b = append(b, `,"session":{`...)
	var buf [flatMax]member // sessions are small: sorting them allocates nothing
	members := vals.appendAll(buf[:0])
	if len(members) <= len(buf) {
		// Insertion sort: for a session's handful of keys it is several
		// times faster than slices.SortFunc, which calls a comparison
		// function through a pointer for every step.
		for i := 1; i < len(members); i++ {
			for j := i; j > 0 && memberLess(&members[j], &members[j-1]); j-- {
				members[j], members[j-1] = members[j-1], members[j]
			}
		}
	} else {
		slices.SortFunc(members, func(a, b member) int {
			if memberLess(&a, &b) {
				return -1
			}
			if memberLess(&b, &a) {
				return 1
			}
			return 0
		})
	}
	for i := range members {
		m := &members[i]
		if i > 0 {
			b = append(b, ',')
		}
		if m.loaded != nil {
			b = append(append(append(b, '"'), m.loaded...), '"') // its text, as loaded
		} else {
			b = appendJSONString(b, m.key)
		}
		b = append(b, ':')
		b = append(b, m.raw...)
	}
	b = append(b, '}')
	if !rec.Accessed.IsZero() {
		b = append(b, `,"accessed":`...)
		b = appendUnixMilli(b, rec.Accessed)
	}
	if rec.Lifetime > 0 {
		b = append(b, `,"lifetime":`...)
		b = strconv.AppendInt(b, int64(rec.Lifetime/time.Second), 10)
	}
	if rec.Persistent != nil {
		b = append(b, `,"persist":`...)
		b = strconv.AppendBool(b, *rec.Persistent)
	}
	if len(rec.Flashes) > 0 {
		b = append(b, `,"flash":[`...)
		for i, f := range rec.Flashes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f)
		}
		b = append(b, ']')
	}
	if rec.Owner != "" {
		b = append(b, `,"owner":`...)
		b = appendJSONString(b, rec.Owner)
	}
	if rec.Label != "" {
		b = append(b, `,"label":`...)
		b = appendJSONString(b, rec.Label)
	}
	if rec.Ref != "" {
		b = append(b, `,"ref":`...)
		b = appendJSONString(b, rec.Ref)
	}
	return append(b, '}'), nil
}

// valuesSize estimates the bytes the values take in the envelope (quotes,
// colon and comma included), so that encodeEnvelope's buffer is usually
// allocated once; only escaped keys can outgrow it.
func valuesSize(vals *values) int {
	n := len(vals.rec) // a bound for the loaded values
	for k, v := range vals.m {
		n += len(k) + len(v) + 4
	}
	for _, e := range vals.list {
		n += len(e.key) + len(e.raw) + 4
	}
	return n
}

// appendUnixMilli appends t in Unix seconds to the millisecond (truncated):
// an integer on a whole second, as every record was before milliseconds, so
// old and new readers see the same; otherwise exactly three decimals. An
// idle-timeout throttle of a tenth of a short timeout needs the fraction.
func appendUnixMilli(b []byte, t time.Time) []byte {
	sec, ms := t.Unix(), int64(t.Nanosecond()/1e6)
	if ms == 0 {
		return strconv.AppendInt(b, sec, 10)
	}
	if sec < 0 {
		// Unix() is the floor: -1.5 s is -2 s and 500 ms.
		b = append(b, '-')
		sec, ms = -(sec + 1), 1000-ms
	}
	b = strconv.AppendInt(b, sec, 10)
	return append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

// decodeEnvelope parses the JSON record envelope without decoding the
// session's values: each value is kept as a sub-slice of data, decoded only
// if the handler reads it. This is where most of a load's time went with
// encoding/json (the design notes' ≈5.7 µs for six keys). data must not be
// modified afterwards.
func decodeEnvelope(data []byte, rec *Record) error {
	var vals values
	err := decodeEnvelopeValues(data, rec, &vals, true)
	rec.Values = vals.m
	return err
}

// decodeEnvelopeValues is decodeEnvelope with the values decoded into vals
// (as a map if asMap) and rec.Values left nil.
func decodeEnvelopeValues(data []byte, rec *Record, vals *values, asMap bool) error {
	sc := jsonScanner{b: data}
	sawCreated := false
	if err := sc.beginObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, more, err := sc.nextMember(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch string(key) {
		case "created":
			num, err := sc.number()
			if err != nil {
				return err
			}
			if n, ok := smallJSONInt(num); ok && n >= 0 {
				rec.Created = time.Unix(n, 0)
			} else if rec.Created, err = parseUnixSeconds(json.Number(num)); err != nil {
				return err
			}
			sawCreated = true
		case "session":
			if err = sc.sessionValues(vals, asMap); err != nil {
				return err
			}
		case "accessed":
			num, err := sc.number()
			if err != nil {
				return err
			}
			t, err := parseUnixMilli(num)
			if err != nil {
				return err
			}
			if !t.IsZero() {
				rec.Accessed = t
			}
		case "lifetime":
			num, err := sc.number()
			if err != nil {
				return err
			}
			n, ok := smallJSONInt(num)
			if !ok {
				big, err := strconv.ParseInt(string(num), 10, 64)
				if err != nil {
					return errBadEnvelope
				}
				n = big
			}
			if n > 0 && n <= maxSeconds {
				rec.Lifetime = time.Duration(n) * time.Second
			}
		case "persist":
			switch {
			case sc.literal("true"):
				rec.Persistent = new(bool)
				*rec.Persistent = true
			case sc.literal("false"):
				rec.Persistent = new(bool)
			case sc.literal("null"):
			default:
				return errBadEnvelope
			}
		case "flash":
			sc.ws()
			start := sc.i
			if err := sc.value(0); err != nil {
				return err
			}
			// Into a variable of this case's own: &rec.Flashes handed to
			// Unmarshal would make every caller's Record escape.
			var flashes []string
			if err := json.Unmarshal(data[start:sc.i], &flashes); err != nil {
				return err
			}
			rec.Flashes = flashes
		case "owner", "label", "ref":
			sc.ws()
			raw, err := sc.str()
			if err != nil {
				return err
			}
			v, err := jsonKey(raw)
			if err != nil {
				return err
			}
			switch key[0] {
			case 'o':
				rec.Owner = v
			case 'l':
				rec.Label = v
			default:
				rec.Ref = v
			}
		default:
			if err := sc.value(0); err != nil {
				return err
			}
		}
	}
	if sc.ws(); sc.i != len(data) {
		return errBadEnvelope
	}
	if !sawCreated {
		return errors.Join(ErrDecode, errors.New("record has no created time"))
	}
	return nil
}

// maxSeconds keeps durations built from seconds clear of int64 overflow.
const maxSeconds = int64(1<<63-1) / int64(time.Second)

// parseUnixSeconds accepts an integer or a float (Python may write either).
func parseUnixSeconds(n json.Number) (time.Time, error) {
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0), nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > float64(maxSeconds) {
		return time.Time{}, fmt.Errorf("%w: bad created time %q", ErrDecode, n)
	}
	return time.Unix(int64(f), 0), nil
}

// parseUnixMilli reads num, a JSON number, as a Unix time in seconds,
// truncated to the millisecond. A time not after the epoch at that
// precision reads as the zero Time: it is nobody's last activity, and
// "accessed" has always ignored such values rather than refusing the
// record. A number whose seconds do not fit an int64 is an error, as it
// was when "accessed" was an integer.
func parseUnixMilli(num []byte) (time.Time, error) {
	// Allocation-free for what records hold: integers (every record written
	// before milliseconds) and digits.digits (encodeEnvelope's three
	// decimals, or the fraction of a Python float).
	if sec, ok := smallJSONInt(num); ok {
		return positiveUnixMilli(sec, 0), nil
	}
	if dot := bytes.IndexByte(num, '.'); dot > 0 && num[0] != '-' {
		if sec, ok := smallJSONInt(num[:dot]); ok {
			if ms, ok := fractionMilli(num[dot+1:]); ok {
				return positiveUnixMilli(sec, ms), nil
			}
		}
	}
	if !bytes.ContainsAny(num, ".eE") {
		sec, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return time.Time{}, errBadEnvelope
		}
		return positiveUnixMilli(sec, 0), nil
	}
	// Exponents and long integer parts, which neither we nor Python's
	// json.dumps of a time write.
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f >= 1<<63 || f < -(1<<63) {
		return time.Time{}, errBadEnvelope
	}
	if f <= 0 {
		return time.Time{}, nil
	}
	whole, frac := math.Modf(f)
	// Rounded to the microsecond before truncating to the millisecond: the
	// float nearest 1.700000000001e9 is 1700000000.00099992…, meant as 1 ms.
	sec, ms := int64(whole), int64(math.Round(frac*1e6))/1000
	if ms == 1000 {
		sec, ms = sec+1, 0
	}
	return positiveUnixMilli(sec, ms), nil
}

// fractionMilli reads the digits after a decimal point as milliseconds,
// truncating any beyond the third. ok is false unless frac is all digits.
func fractionMilli(frac []byte) (ms int64, ok bool) {
	if len(frac) == 0 {
		return 0, false
	}
	for i, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
		if i < 3 {
			ms = ms*10 + int64(c-'0')
		}
	}
	for i := len(frac); i < 3; i++ {
		ms *= 10
	}
	return ms, true
}

// positiveUnixMilli is sec seconds and ms milliseconds after the epoch, or
// the zero Time if that is not after it.
func positiveUnixMilli(sec, ms int64) time.Time {
	if sec < 0 || sec == 0 && ms <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, ms*1e6)
}

// sessionValues delimits the members of the "session" object into vals,
// replacing what it held: in place, as spans of the record (see values),
// or as a map when they cannot be or asMap is set (a Record wants one).
// The map's keys are cut from one string holding the object's text, one
// allocation for all of them; a key with escapes or non-ASCII bytes is
// decoded on its own.
func (sc *jsonScanner) sessionValues(vals *values, asMap bool) error {
	*vals = values{}
	if sc.literal("null") {
		return nil
	}
	type member struct{ k0, k1, v0, v1 int }
	var buf [flatMax]member
	members := buf[:0]
	if err := sc.beginObject(); err != nil {
		return err
	}
	objStart := sc.i
	for first := true; ; first = false {
		key, more, err := sc.nextMember(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		sc.ws()
		v0 := sc.i
		if err := sc.value(0); err != nil {
			return err
		}
		k0 := cap(sc.b) - cap(key) // key is a sub-slice of sc.b
		members = append(members, member{k0, k0 + len(key), v0, sc.i})
	}
	if len(members) == 0 {
		return nil
	}
	if !asMap && len(members) <= flatMax && len(sc.b) <= math.MaxInt32 {
		spans := make([]span, len(members))
		for i, m := range members {
			spans[i] = span{int32(m.k0), int32(m.k1), int32(m.v0), int32(m.v1)}
		}
		if vals.loadSpans(sc.b, spans) {
			return nil
		}
	}
	text := string(sc.b[objStart:sc.i])
	vals.m = make(map[string][]byte, len(members))
	for _, m := range members {
		name := text[m.k0-objStart : m.k1-objStart]
		if strings.IndexByte(name, '\\') >= 0 || !isASCII(name) {
			var err error
			if name, err = jsonKey([]byte(name)); err != nil {
				return err
			}
		}
		vals.m[name] = sc.b[m.v0:m.v1]
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

var errBadEnvelope = errors.Join(ErrDecode, errors.New("malformed session record"))

// jsonKey turns a raw key (without quotes) into a string, unescaping it
// through encoding/json only when it needs it.
func jsonKey(raw []byte) (string, error) {
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			var s string
			err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s)
			return s, err
		}
	}
	return string(raw), nil
}

// jsonScanner walks JSON text, checking its syntax as encoding/json would,
// without building values.
type jsonScanner struct {
	b []byte
	i int
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 1000

// The scanner's loops work on local copies of b and i, which the compiler
// keeps in registers, and store i back once: through the pointer, every
// step would be a load and a store.

func (s *jsonScanner) ws() {
	b, i := s.b, s.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	s.i = i
}

func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) literal(lit string) bool {
	s.ws()
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// beginObject consumes the '{' of an object.
func (s *jsonScanner) beginObject() error {
	if s.peek() != '{' {
		return errBadEnvelope
	}
	s.i++
	return nil
}

// nextMember consumes the separator before the next member (none before the
// first) and its key and colon, leaving the scanner before the member's
// value, which the caller must consume. more is false at the closing '}'.
func (s *jsonScanner) nextMember(first bool) (key []byte, more bool, err error) {
	switch c := s.peek(); {
	case c == '}':
		s.i++
		return nil, false, nil
	case !first && c == ',':
		s.i++
	case !first:
		return nil, false, errBadEnvelope
	}
	if key, err = s.str(); err != nil {
		return nil, false, err
	}
	if s.peek() != ':' {
		return nil, false, errBadEnvelope
	}
	s.i++
	return key, true, nil
}

// str parses a string and returns its raw contents, escapes untouched.
func (s *jsonScanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errBadEnvelope
	}
	b, start := s.b, s.i+1
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return b[start:i], nil
		case c < 0x20:
			return nil, errBadEnvelope
		case c == '\\':
			i++
			if i >= len(b) {
				return nil, errBadEnvelope
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHex4(b[i+1:i+5]) {
					return nil, errBadEnvelope
				}
				i += 4
			default:
				return nil, errBadEnvelope
			}
		}
	}
	return nil, errBadEnvelope
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// number parses a JSON number and returns its text.
func (s *jsonScanner) number() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return nil, errBadEnvelope
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, errBadEnvelope
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, errBadEnvelope
		}
	}
	return s.b[start:s.i], nil
}

func (s *jsonScanner) digits() int {
	b, i := s.b, s.i
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	n := i - s.i
	s.i = i
	return n
}

// value skips one JSON value of any kind. Python's json.dumps also writes
// NaN, Infinity and -Infinity; they are accepted here so such a session
// still loads (and is written back unchanged), and only that key fails to
// decode when read.
func (s *jsonScanner) value(depth int) error {
	if depth > maxDepth {
		return errBadEnvelope
	}
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		s.i++
		for first := true; ; first = false {
			_, more, err := s.nextMember(first)
			if err != nil || !more {
				return err
			}
			if err := s.value(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return errBadEnvelope
			}
		}
	case c == 't':
		return s.want("true")
	case c == 'f':
		return s.want("false")
	case c == 'n':
		return s.want("null")
	case c == 'N':
		return s.want("NaN")
	case c == 'I':
		return s.want("Infinity")
	case c == '-' && s.i+1 < len(s.b) && s.b[s.i+1] == 'I':
		return s.want("-Infinity")
	default:
		_, err := s.number()
		return err
	}
}

func (s *jsonScanner) want(lit string) error {
	if !s.literal(lit) {
		return errBadEnvelope
	}
	return nil
}
