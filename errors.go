package httpsession

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps at most a few of
// these, so callers branch with errors.Is and never on message text.
var (
	// ErrNoMiddleware is returned by Get and NewSession for a request that did
	// not pass through the middleware.
	ErrNoMiddleware = errors.New("httpsession: request did not pass through the session middleware")

	// ErrNotFound is returned by a Store or Backend when the cookie or key names
	// no live session. The middleware turns it into a fresh, empty session;
	// it is never shown to the client.
	ErrNotFound = errors.New("httpsession: session not found")

	// ErrExists is returned by Backend.Add when the key is already taken.
	ErrExists = errors.New("httpsession: session key already exists")

	// ErrUnavailable wraps every failure to reach a store (network error,
	// timeout, server down). The default error handler answers 503 for it.
	ErrUnavailable = errors.New("httpsession: session store unavailable")

	// ErrCommitted is returned when a session is changed after its response
	// headers were sent: the change cannot reach the client any more.
	ErrCommitted = errors.New("httpsession: session changed after the response headers were sent")

	// ErrReplaced is returned when a session is changed after NewSession
	// replaced it: its data stays readable, but only the session NewSession
	// returned is saved.
	ErrReplaced = errors.New("httpsession: session replaced by NewSession")

	// ErrConflict reports that another request of the same session changed a
	// key that this request changed too. By default this request's value
	// wins and the conflict is only logged; WithConflictPolicy(ConflictFail)
	// answers through the error handler instead (409 Conflict by default).
	// A ConditionalBackend also returns it from ReplaceIf.
	ErrConflict = errors.New("httpsession: session changed by a concurrent request")

	// ErrRecordTooLarge is returned when an encoded session record exceeds
	// the limit WithMaxRecordSize sets. It is detected before any header is
	// written and nothing is stored; the default error handler answers 500.
	ErrRecordTooLarge = errors.New("httpsession: session record too large")

	// ErrCookieTooLarge is returned when the encoded cookie (name and value)
	// exceeds MaxCookieSize. It is detected before any header is written.
	ErrCookieTooLarge = errors.New("httpsession: session cookie too large")

	// ErrEncode is returned by Session.Set for a value the codec cannot encode.
	ErrEncode = errors.New("httpsession: cannot encode session value")

	// ErrDecode is returned by GetAs for a value that cannot be decoded into
	// the requested type.
	ErrDecode = errors.New("httpsession: cannot decode session value")

	// ErrMissingKey is returned by GetAs when the session has no such key.
	ErrMissingKey = errors.New("httpsession: no such key in session")

	// ErrInvalidConfig is returned at construction for options that would make
	// browsers drop the cookie or weaken security (see Middleware).
	ErrInvalidConfig = errors.New("httpsession: invalid configuration")

	// ErrInvalidKey is returned at construction for a missing, short or
	// repeated secret key, or one that is obviously not secret (one byte
	// repeated, such as all zero; for Fernet, equal halves).
	ErrInvalidKey = errors.New("httpsession: invalid secret key")

	// ErrHijacked is logged when a connection is hijacked while the session
	// still had a cookie to send: the store is written, the cookie is not,
	// and a server-side record created for that cookie is deleted again.
	ErrHijacked = errors.New("httpsession: connection hijacked before the session cookie could be sent")
)

// prefix starts the text of every error this package returns, once.
const prefix = "httpsession: "

// errorf is fmt.Errorf for the errors this package returns: the text starts
// with "httpsession: " and says it once, however many of this package's
// errors (each with its own prefix, a sentinel's) the chain wraps, so that
// context reads "httpsession: load session: session store unavailable: …".
// errors.Is and errors.As see every wrapped error.
func errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &chainError{msg: prefix + strings.ReplaceAll(err.Error(), prefix, ""), err: err}
}

// chainError is errorf's error: the text with one prefix, and the chain.
type chainError struct {
	msg string
	err error
}

func (e *chainError) Error() string { return e.msg }
func (e *chainError) Unwrap() error { return e.err }
