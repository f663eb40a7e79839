package httpsession

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// decodeEnvelope parses the JSON record envelope without decoding the
// session's values: each value is kept as a sub-slice of data, decoded only
// if the handler reads it. This is where most of a load's time went with
// encoding/json (the design notes' ≈5.7 µs for six keys). data must not be
// modified afterwards.
func decodeEnvelope(data []byte, rec *Record) error {
	sc := jsonScanner{b: data}
	sawCreated := false
	err := sc.object(func(key []byte) error {
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
			if sc.literal("null") {
				rec.Values = nil
				return nil
			}
			values := make(map[string][]byte)
			err := sc.object(func(k []byte) error {
				sc.ws()
				start := sc.i
				if err := sc.value(0); err != nil {
					return err
				}
				name, err := jsonKey(k)
				values[name] = data[start:sc.i]
				return err
			})
			rec.Values = values
			return err
		case "accessed", "lifetime":
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
			if key[0] == 'a' && n > 0 {
				rec.Accessed = time.Unix(n, 0)
			} else if key[0] == 'l' && n > 0 && n <= maxSeconds {
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
			start := sc.i
			if err := sc.value(0); err != nil {
				return err
			}
			rec.Flashes = nil
			return json.Unmarshal(data[start:sc.i], &rec.Flashes)
		default:
			return sc.value(0)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sc.ws(); sc.i != len(data) {
		return errBadEnvelope
	}
	if !sawCreated {
		return errors.Join(ErrDecode, errors.New("record has no created time"))
	}
	return nil
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

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
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

// object parses an object, calling member with each raw key while the
// scanner stands before that member's value, which member must consume.
func (s *jsonScanner) object(member func(key []byte) error) error {
	if s.peek() != '{' {
		return errBadEnvelope
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return errBadEnvelope
		}
		s.i++
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errBadEnvelope
		}
	}
}

// str parses a string and returns its raw contents, escapes untouched.
func (s *jsonScanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errBadEnvelope
	}
	start := s.i + 1
	for s.i = start; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], nil
		case c < 0x20:
			return nil, errBadEnvelope
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return nil, errBadEnvelope
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(s.b)-s.i < 5 || !isHex4(s.b[s.i+1:s.i+5]) {
					return nil, errBadEnvelope
				}
				s.i += 4
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
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
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
		return s.object(func([]byte) error { return s.value(depth + 1) })
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
