package httpsession

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is what a Store keeps for one session: the user's values, each
// already encoded by the Codec, plus the metadata the middleware needs to
// enforce expiry. It never holds the session ID.
type Record struct {
	// Created is when the session began; the absolute lifetime runs from it.
	Created time.Time
	// Accessed is the last time the record was saved; the idle timeout runs
	// from it. JSONCodec keeps it with millisecond precision (truncated),
	// which an idle timeout of a few seconds, throttled to a tenth of it,
	// needs; records written before that hold whole seconds, and read as
	// such. Zero in records written by other libraries.
	Accessed time.Time
	// Lifetime overrides the middleware's lifetime for this session
	// (Session.SetLifetime); zero means the default.
	Lifetime time.Duration
	// Persistent overrides the middleware's choice of a persistent or a
	// browser-session cookie for this session (Session.SetPersistent); nil
	// means the default.
	Persistent *bool
	// Values maps each key to its codec-encoded value.
	Values map[string][]byte
	// Flashes are pending flash messages, kept apart from Values so they
	// never collide with the user's keys.
	Flashes []string
	// Owner is the user the session is bound to (Session.SetOwner); "" for
	// an anonymous session.
	Owner string
	// Label is the session's label in its owner's list (Session.SetLabel).
	Label string
	// Ref names an owned cookie session's entry in its owner's list
	// (WithCookieRevocation); server-side records never carry it.
	Ref string
}

// Codec encodes session values and whole records. Values are encoded one by
// one when they are set, so an unencodable value is reported by Session.Set,
// and decoded only when read, so untouched keys cost nothing.
type Codec interface {
	// EncodeValue encodes one session value.
	EncodeValue(v any) ([]byte, error)
	// DecodeValue decodes data, produced by EncodeValue, into v (a pointer).
	DecodeValue(data []byte, v any) error
	// EncodeRecord encodes rec; its Values are already encoded.
	EncodeRecord(rec *Record) ([]byte, error)
	// DecodeRecord decodes data into rec. Any error means "no session".
	DecodeRecord(data []byte, rec *Record) error
}

// JSONCodec is the default Codec. Records are aiohttp_session's envelope,
//
//	{"created": 1700000000, "session": {"key": value, ...}}
//
// with httpsession's metadata as extra top-level fields ("accessed",
// "lifetime", "persist", "flash") that aiohttp_session ignores. Values use
// encoding/json, so any type encoding/json handles works without
// registration.
type JSONCodec struct{}

// EncodeValue implements Codec with json.Marshal, without HTML escaping so
// the bytes match Python's json.dumps for "<", ">" and "&".
func (JSONCodec) EncodeValue(v any) ([]byte, error) {
	// The types sessions hold most often skip encoding/json's reflection.
	switch v := v.(type) {
	case string:
		return appendJSONString(make([]byte, 0, len(v)+2), v), nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(nil, v, 10), nil
	case bool:
		return strconv.AppendBool(nil, v), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// DecodeValue implements Codec with json.Unmarshal.
func (JSONCodec) DecodeValue(data []byte, v any) error {
	if decodePlain(data, v) {
		return nil
	}
	return json.Unmarshal(data, v)
}

// decodePlain decodes, as encoding/json would, what sessions mostly hold
// (plain strings, small integers and booleans) into v, skipping
// encoding/json's reflection; it reports false for anything else, or
// anything it is unsure of, and then leaves v alone. It only writes
// through v, so a pointer to a caller's variable does not escape.
func decodePlain(data []byte, v any) bool {
	switch p := v.(type) {
	case *any:
		switch {
		case len(data) > 0 && data[0] == '"':
			if s, ok := plainJSONString(data); ok {
				*p = s
				return true
			}
		case string(data) == "true" || string(data) == "false":
			*p = data[0] == 't'
			return true
		default:
			if n, ok := smallJSONInt(data); ok {
				*p = float64(n) // encoding/json's number type for any
				return true
			}
		}
	case *string:
		if s, ok := plainJSONString(data); ok {
			*p = s
			return true
		}
	case *int:
		if n, ok := smallJSONInt(data); ok {
			*p = int(n)
			return true
		}
	case *int64:
		if n, ok := smallJSONInt(data); ok {
			*p = n
			return true
		}
	case *bool:
		if string(data) == "true" || string(data) == "false" {
			*p = data[0] == 't'
			return true
		}
	}
	return false
}

// plainJSONString decodes a JSON string that needs no unescaping.
func plainJSONString(data []byte) (string, bool) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return "", false
	}
	body := data[1 : len(data)-1]
	for _, c := range body {
		if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return "", false
		}
	}
	return string(body), true
}

// smallJSONInt decodes a JSON integer of at most 15 digits, which every
// Go integer type and float64 hold exactly.
func smallJSONInt(data []byte) (int64, bool) {
	digits := data
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(data) {
		if n == 0 {
			return 0, false // -0 is a float64 of its own
		}
		n = -n
	}
	return n, true
}

// EncodeRecord implements Codec. It appends the pre-encoded values instead
// of marshalling a map, so nothing is encoded twice.
func (JSONCodec) EncodeRecord(rec *Record) ([]byte, error) {
	return encodeEnvelope(rec)
}

// DecodeRecord implements Codec. aiohttp_session's "{}" (an invalidated
// session) and an envelope without a numeric "created" are rejected, so they
// read as "no session". Values are not decoded here, only delimited.
func (JSONCodec) DecodeRecord(data []byte, rec *Record) error {
	return decodeEnvelope(data, rec)
}

// decodeRecord is c.DecodeRecord. A *Record handed to an interface's
// method escapes, so a Record that the caller keeps on its stack would be
// a heap allocation on every load; JSONCodec, the default, is called
// directly, and only another codec gets a Record of its own on the heap.
func decodeRecord(c Codec, data []byte, rec *Record) error {
	if _, ok := c.(JSONCodec); ok {
		return decodeEnvelope(data, rec)
	}
	r := new(Record)
	err := c.DecodeRecord(data, r)
	*rec = *r
	return err
}

// decodeSession is decodeRecord for a session about to be loaded: the
// values go to vals, without a map for JSONCodec's records (see values),
// and rec.Values is left nil.
func decodeSession(c Codec, data []byte, rec *Record, vals *values) error {
	if _, ok := c.(JSONCodec); ok {
		return decodeEnvelopeValues(data, rec, vals, false)
	}
	err := decodeRecord(c, data, rec)
	*vals, rec.Values = values{m: rec.Values}, nil
	return err
}

// encodeRecord is c.EncodeRecord, calling JSONCodec directly for the
// reason decodeRecord does.
func encodeRecord(c Codec, rec *Record) ([]byte, error) {
	if _, ok := c.(JSONCodec); ok {
		return encodeEnvelope(rec)
	}
	r := new(Record)
	*r = *rec
	return c.EncodeRecord(r)
}

// encodeSession is encodeRecord for a session: the values come from vals,
// written from where they are, without a map, for JSONCodec (see values).
func encodeSession(c Codec, rec *Record, vals *values) ([]byte, error) {
	if _, ok := c.(JSONCodec); ok {
		return encodeEnvelopeValues(rec, vals)
	}
	rec.Values = vals.record()
	return encodeRecord(c, rec)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
