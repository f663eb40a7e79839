package httpsession

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// The response headers a session adds: its cookie, and what keeps shared
// caches from storing a page that depends on it.

// maxCookieAge is the longest Max-Age browsers honour (RFC 6265bis caps it
// at 400 days); a longer session's cookie is refreshed when it is saved.
const maxCookieAge = 400 * 24 * time.Hour

// cookieMaxAge rounds ttl up to whole seconds without overflowing.
func cookieMaxAge(ttl time.Duration) int {
	ttl = min(ttl, maxCookieAge)
	n := int(ttl / time.Second)
	if ttl%time.Second != 0 {
		n++
	}
	return n
}

// deletionCookie expires the cookie; it carries the same Path and Domain (and
// attributes) so that the browser matches and removes it.
func (m *manager) deletionCookie() string {
	return formatCookie(&m.cookie, "", -1, time.Unix(0, 0))
}

// The headers below are written into the header map directly, under
// their canonical keys, which Header.Add and Header.Set would canonicalise
// on every call; and a header the response does not have yet gets its
// value's storage from spare, which the request's state provides, so that
// it costs no allocation.

// addVaryCookie marks the response as depending on the Cookie header, so a
// shared cache never serves one user's session page to another.
func addVaryCookie(h http.Header, spare *[1]string) {
	for _, v := range h["Vary"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Cookie") {
				return
			}
		}
	}
	addHeader(h, "Vary", "Cookie", spare)
}

// addHeader adds v to the values of the canonical key.
func addHeader(h http.Header, key, v string, spare *[1]string) {
	vs := h[key]
	if vs == nil {
		vs = spare[:0:1]
	}
	h[key] = append(vs, v)
}

// makePrivate keeps shared caches from storing a response that sets or
// deletes the session cookie (Flask CVE-2023-30861): "public" and
// "s-maxage" go, "private" is added unless the response is "no-store".
func makePrivate(h http.Header, spare *[1]string) {
	cc := h["Cache-Control"]
	if len(cc) == 0 {
		addHeader(h, "Cache-Control", "no-store", spare)
		return
	}
	var keep []string
	private := false
	for _, v := range cc {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			name := strings.ToLower(d)
			if i := strings.IndexByte(name, '='); i >= 0 {
				name = name[:i]
			}
			switch name {
			case "":
				continue
			case "public", "s-maxage":
				continue
			case "private", "no-store":
				private = true
			}
			keep = append(keep, d)
		}
	}
	if !private {
		keep = append([]string{"private"}, keep...)
	}
	h.Set("Cache-Control", strings.Join(keep, ", "))
}

// warnInsecure logs once when a Secure cookie goes out over plain HTTP to a
// host other than loopback, where browsers will refuse to store it.
func (st *requestState) warnInsecure() {
	r := st.r
	if !st.m.cookie.Secure || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return
	}
	st.m.warnOnce.Do(func() {
		st.m.log().Warn("httpsession: Secure session cookie sent over plain HTTP; browsers will not store it. "+
			"Serve HTTPS, or use WithSecure(false) for a plain-HTTP development host", "host", r.Host)
	})
}
