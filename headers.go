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

// addVaryCookie marks the response as depending on the Cookie header, so a
// shared cache never serves one user's session page to another. The header
// map is used directly, under the canonical key "Vary", which is what
// Header.Values and Header.Add would canonicalise it to on every call; a
// response without Vary gets spare as the value's storage, which the
// request's state provides so that the header costs no allocation.
func addVaryCookie(h http.Header, spare *[1]string) {
	vary := h["Vary"]
	if vary == nil {
		vary = spare[:0:1]
	}
	for _, v := range vary {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Cookie") {
				return
			}
		}
	}
	h["Vary"] = append(vary, "Cookie")
}

// makePrivate keeps shared caches from storing a response that sets or
// deletes the session cookie (Flask CVE-2023-30861): "public" and
// "s-maxage" go, "private" is added unless the response is "no-store".
func makePrivate(h http.Header) {
	cc := h.Values("Cache-Control")
	if len(cc) == 0 {
		h.Set("Cache-Control", "no-store")
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
