// Package httpsession gives any net/http server sessions: a middleware
// loads a Session from a Store into the request, handlers use it like a
// map, and the middleware saves it, with the right cookie attributes,
// before the response's first byte.
//
//	store, err := httpsession.NewNaClCookieStore(key) // 32 secret bytes
//	sessions, err := httpsession.Middleware(store)
//	http.ListenAndServe(addr, sessions(mux))
//
//	func handler(w http.ResponseWriter, r *http.Request) {
//		s, err := httpsession.Get(r)
//		if err != nil {
//			return // the store is down: the middleware answers 503
//		}
//		n, _ := httpsession.GetAs[int](s, "visits")
//		s.Set("visits", n+1)
//		fmt.Fprintf(w, "visit %d", n+1)
//	}
//
// # How a request flows
//
// Middleware wraps the ResponseWriter and nothing else: a handler that
// never calls Get costs no cookie parsing, no crypto, no store call, and
// gets no Set-Cookie or Vary header. The first Get(r) reads the session
// cookie and the store; later calls return the same *Session. The handler
// reads and changes it. Just before the first byte of the response goes
// out — the first final WriteHeader, Write, Flush (also through
// http.ResponseController), ReadFrom or Hijack, or the handler's return if
// it wrote nothing — the middleware saves the session if it changed, was
// invalidated, got a new identity, or its idle-timeout activity is due,
// and adds Set-Cookie. Informational responses such as 103 Early Hints pass
// through without committing. A change made after that point cannot reach
// the client: Set returns ErrCommitted and the change is logged. If the
// handler panics, nothing is saved.
//
// # Choosing a store
//
// Cookie stores keep the whole session in the cookie (at most 4096 bytes)
// and need no server; they cannot revoke a session, so a copied cookie
// stays valid until the expiry sealed inside it:
//
//   - NewNaClCookieStore: encrypted and authenticated (secretbox); the
//     smallest and fastest, and aiohttp_session's NaClCookieStorage format.
//   - NewEncryptedCookieStore: encrypted and authenticated in
//     gorilla/securecookie's format.
//   - NewFernetCookieStore: aiohttp_session's EncryptedCookieStorage format.
//   - NewSignedCookieStore: readable by the client, not forgeable.
//   - NewInsecureCookieStore: plain JSON, for tests only.
//
// Server-side stores keep the data on the server under a random 256-bit
// session ID (stored under its SHA-256 hash) and can revoke sessions:
// NewMemoryStore for one process, NewRedisStore (single node, Sentinel or
// Cluster) and NewMemcachedStore to share sessions, or NewServerStore with
// your own Backend. The first three, and a ConditionalBackend, update a
// record with a compare-and-set against the version the request loaded:
// when another request of the session wrote first, this request's changes
// are replayed on top of its record (WithMerge and WithConflictPolicy
// settle a key both changed), and a request that was in flight while its
// session was invalidated never writes it back. With a cookie store the
// cookie the browser got last wins. See the README's "Concurrent requests".
//
// # Security defaults
//
// Cookies are Secure, HttpOnly, SameSite=Lax, Path=/, with both Max-Age
// and Expires. Browsers (and net/http/cookiejar) accept Secure cookies from
// http://localhost and 127.0.0.1, so local development works as is; for
// another plain-HTTP development host use WithSecure(false) — the
// middleware logs a warning once when a Secure cookie goes out over plain
// HTTP to a non-loopback host. Lifetimes are enforced from the sealed or
// stored record, not only by the cookie's Max-Age. Call Session.NewIdentity
// at login and privilege changes (session fixation) and Session.Invalidate
// at logout. Responses that read the session carry Vary: Cookie; responses
// that set or delete the cookie are kept out of shared caches.
//
// # Errors
//
// A bad, tampered, expired or foreign cookie is not an error: it reads as
// no session. A store that is down or slow is: Get returns an error
// wrapping ErrUnavailable and its cause, and the middleware answers with
// its error handler (503 by default; 409 for ErrConflict under
// ConflictFail, 500 for other failures) instead of the handler's output, so
// a user's session is never silently reset and then overwritten. Every
// error wraps one of the exported sentinels, for errors.Is.
package httpsession
