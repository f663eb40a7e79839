package httpsession

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The middleware reads and writes its own cookie rather than going through
// r.CookiesNamed and http.Cookie.String: it looks at one name only and
// allocates nothing while scanning, and it can carry values net/http would
// drop, such as aiohttp_session's Python-quoted JSON, leaving their
// validation to the store that understands them.

// cookieValues calls fn with the value of every cookie named name, in
// header order, until fn returns true. One pair of surrounding double quotes
// is removed, as RFC 6265 allows; nothing else is altered.
func cookieValues(h http.Header, name string, fn func(value string) bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.Trim(part, " \t")
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if fn(v) {
				return
			}
		}
	}
}

// errCookieValue guards the header against a store that returns a token a
// Set-Cookie line cannot carry.
var errCookieValue = errors.New("httpsession: store returned a token with bytes a cookie cannot carry")

// checkCookieValue accepts printable ASCII except ';' (and ',' outside a
// quoted value), which is all any Store produces; anything else could split
// or inject header fields.
func checkCookieValue(v string) error {
	quoted := len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"'
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == ';' || !quoted && (c == ' ' || c == ',' || c == '"' || c == '\\') {
			return errCookieValue
		}
	}
	return nil
}

// formatCookie renders a Set-Cookie value in net/http's attribute order.
// maxAge < 0 renders a deletion (Max-Age=0 and an Expires in 1970);
// maxAge == 0 renders a browser-session cookie.
func formatCookie(tmpl *http.Cookie, value string, maxAge int, expires time.Time) string {
	var scratch [160]byte // attributes; the name and value go straight into sb
	var sb strings.Builder
	sb.Grow(len(tmpl.Name) + len(value) + len(tmpl.Path) + len(tmpl.Domain) + 110)
	sb.WriteString(tmpl.Name)
	sb.WriteByte('=')
	sb.WriteString(value)
	b := scratch[:0]
	if tmpl.Path != "" {
		b = append(b, "; Path="...)
		b = append(b, tmpl.Path...)
	}
	if tmpl.Domain != "" {
		b = append(b, "; Domain="...)
		b = append(b, strings.TrimPrefix(tmpl.Domain, ".")...)
	}
	if maxAge != 0 {
		b = append(b, "; Expires="...)
		b = appendHTTPDate(b, expires)
		b = append(b, "; Max-Age="...)
		b = strconv.AppendInt(b, int64(max(maxAge, 0)), 10)
	}
	if tmpl.HttpOnly {
		b = append(b, "; HttpOnly"...)
	}
	if tmpl.Secure {
		b = append(b, "; Secure"...)
	}
	switch tmpl.SameSite {
	case http.SameSiteLaxMode:
		b = append(b, "; SameSite=Lax"...)
	case http.SameSiteStrictMode:
		b = append(b, "; SameSite=Strict"...)
	case http.SameSiteNoneMode:
		b = append(b, "; SameSite=None"...)
	}
	if tmpl.Partitioned {
		b = append(b, "; Partitioned"...)
	}
	sb.Write(b)
	return sb.String()
}

// appendHTTPDate appends t as an IMF-fixdate (http.TimeFormat) without
// time.Format's layout interpretation, which was a tenth of a save.
func appendHTTPDate(b []byte, t time.Time) []byte {
	const days, months = "SunMonTueWedThuFriSat", "JanFebMarAprMayJunJulAugSepOctNovDec"
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 1000 || y > 9999 {
		return t.AppendFormat(b, http.TimeFormat) // not reachable from a session's lifetime
	}
	wd := int(t.Weekday())
	b = append(b, days[3*wd:3*wd+3]...)
	b = append(b, ',', ' ', byte('0'+d/10), byte('0'+d%10), ' ')
	b = append(b, months[3*(mo-1):3*mo]...)
	b = append(b, ' ')
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), ' ')
	b = append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10))
	return append(b, " GMT"...)
}
