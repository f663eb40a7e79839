package httpsession

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// NewInsecureCookieStore returns a cookie store that keeps the record in the
// cookie as readable JSON, unsigned: anyone can read and forge it. For tests
// and debugging only. It has no seal, so nothing binds its cookies to the
// cookie's name and path either (see CookieStore).
//
// Its cookie is aiohttp_session's SimpleCookieStorage format: the record as
// Python's json.dumps writes it (", " and ": " separators, non-ASCII and
// DEL escaped as \uXXXX), quoted as Python's http.cookies quotes it, such
// as "{\"created\": 1700000000\054 \"session\": {\"a\": 1}}". For the same
// record the bytes are Python's. The same session differs in two ways:
// Go's record has its own members after "session" ("accessed" always;
// "lifetime", "persist" and "flash" when set), which Python ignores and
// drops, and Go writes the session's keys in sorted order where Python
// keeps the order they were set in. Go's own cookie parsers
// (net/http/cookiejar, http.Response.Cookies) drop such values; browsers
// and Python keep them, and the middleware reads them itself.
func NewInsecureCookieStore() *CookieStore { return &CookieStore{sealer: plainSealer{}, plain: true} }

type plainSealer struct{}

// seal ignores head: CookieStore never binds a plain record.
func (plainSealer) seal(_ string, data []byte) (string, error) {
	sc := jsonScanner{b: data}
	if sc.value(0) == nil && sc.peek() == 0 && sc.i == len(data) {
		return pythonQuote(pythonJSON(data)), nil
	}
	// Not JSON (Store.Save called with other bytes): only made ASCII, as
	// respacing could change what it reads as.
	return pythonQuote(asciiJSON(data)), nil
}

func (plainSealer) open(token string) ([]byte, bool) {
	if len(token) >= 2 && token[0] == '"' && token[len(token)-1] == '"' {
		token = token[1 : len(token)-1] // Load called directly, not through the middleware
	}
	return pythonUnquote(token)
}

// pythonJSON rewrites JSON text as Python's json.dumps writes it by
// default: ", " after every comma and ": " after every colon outside
// strings, no other whitespace there, and every non-ASCII character of a
// string escaped as \uXXXX (ensure_ascii). data must be valid JSON:
// the caller checked it.
func pythonJSON(data []byte) []byte {
	b := make([]byte, 0, len(data)+len(data)/8)
	inString := false
	for i := 0; i < len(data); {
		c := data[i]
		if !inString {
			switch c {
			case ' ', '\t', '\n', '\r':
			case ',', ':':
				b = append(b, c, ' ')
			case '"':
				inString = true
				b = append(b, c)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		switch {
		case c == '\\' && i+1 < len(data):
			b = append(b, c, data[i+1])
			i += 2
			continue
		case c == '"':
			inString = false
		case c == 0x7f: // DEL: ASCII, but json.dumps escapes it
			b = append(b, `\u007f`...)
			i++
			continue
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[i:])
			i += size
			b = appendUTF16Escape(b, r)
			continue
		}
		b = append(b, c)
		i++
	}
	return b
}

// asciiJSON escapes every non-ASCII character as \uXXXX, as Python's
// json.dumps does by default, so the cookie stays ASCII.
func asciiJSON(data []byte) []byte {
	var b []byte
	for i := 0; i < len(data); {
		if data[i] < utf8.RuneSelf {
			b = append(b, data[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		i += size
		b = appendUTF16Escape(b, r)
	}
	return b
}

// appendUTF16Escape appends r as json.dumps escapes it: \uXXXX, or a
// surrogate pair of them.
func appendUTF16Escape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	units := [2]rune{r}
	n := 1
	if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
		units, n = [2]rune{r1, r2}, 2
	}
	for _, u := range units[:n] {
		b = append(b, '\\', 'u', hex[u>>12&0xf], hex[u>>8&0xf], hex[u>>4&0xf], hex[u&0xf])
	}
	return b
}

// pythonQuote is http.cookies._quote: a value of only "legal" characters
// goes bare; anything else is double-quoted with '"' and '\\' backslashed
// and other characters outside the unescaped set written as \ooo octal.
func pythonQuote(v []byte) string {
	bare := len(v) > 0
	for _, c := range v {
		if !pythonLegal(c) {
			bare = false
			break
		}
	}
	if bare {
		return string(v)
	}
	b := make([]byte, 0, len(v)+len(v)/8+2)
	b = append(b, '"')
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case pythonLegal(c) || strings.IndexByte(" ()/<=>?@[]{}", c) >= 0:
			b = append(b, c)
		default:
			b = append(b, '\\', '0'+c>>6, '0'+c>>3&7, '0'+c&7)
		}
	}
	return string(append(b, '"'))
}

func pythonLegal(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~:", c) >= 0
}

// pythonUnquote is http.cookies._unquote for a value whose outer quotes are
// already removed: \ooo (first digit 0-3) is that code point, \X is X.
func pythonUnquote(v string) ([]byte, bool) {
	if strings.IndexByte(v, '\\') < 0 {
		return []byte(v), true
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+1 >= len(v) {
			return nil, false
		}
		if i+3 < len(v) && '0' <= v[i+1] && v[i+1] <= '3' && isOctal(v[i+2]) && isOctal(v[i+3]) {
			b = utf8.AppendRune(b, rune(v[i+1]-'0')<<6|rune(v[i+2]-'0')<<3|rune(v[i+3]-'0'))
			i += 3
			continue
		}
		b = append(b, v[i+1])
		i++
	}
	return b, true
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }
