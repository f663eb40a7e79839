package httpsession

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults used by Middleware.
const (
	DefaultCookieName = "session"
	DefaultLifetime   = 24 * time.Hour
	// MaxCookieSize is the most bytes of name plus value a cookie may have;
	// browsers silently drop larger ones (RFC 6265 section 6.1).
	MaxCookieSize = 4096
	// DefaultMaxRecordSize bounds an encoded session record (see
	// WithMaxRecordSize): far more than a session needs, far less than
	// Memcached's 1 MB item limit.
	DefaultMaxRecordSize = 64 << 10
)

// Option configures Middleware.
type Option func(*config)

// ErrorHandler writes the response for a request whose session could not be
// loaded or saved. It is called before any of the handler's output was sent.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

type config struct {
	cookie       http.Cookie // template: name and attributes
	lifetime     time.Duration
	idleTimeout  time.Duration
	persistent   bool
	codec        Codec
	errorHandler ErrorHandler
	logger       *slog.Logger
	now          func() time.Time
	conflicts    ConflictPolicy
	merges       map[string]MergeFunc
	maxRecord    int
	revocation   *cookieLists // WithCookieRevocation
}

func defaultConfig() config {
	return config{
		cookie: http.Cookie{
			Name:     DefaultCookieName,
			Path:     "/",
			Secure:   true,
			HttpOnly: true,
			SameSite: http.SameSiteLaxMode,
		},
		lifetime:   DefaultLifetime,
		maxRecord:  DefaultMaxRecordSize,
		persistent: true,
		codec:      JSONCodec{},
		now:        time.Now,
	}
}

// WithCookieName sets the cookie name (default "session"). A "__Host-"
// prefix demands Secure, Path "/" and no Domain; "__Secure-" demands Secure.
func WithCookieName(name string) Option { return func(c *config) { c.cookie.Name = name } }

// WithPath sets the cookie's Path (default "/").
func WithPath(path string) Option { return func(c *config) { c.cookie.Path = path } }

// WithDomain sets the cookie's Domain (default none: host-only cookie).
func WithDomain(domain string) Option { return func(c *config) { c.cookie.Domain = domain } }

// WithSecure sets the cookie's Secure attribute (default true). Browsers
// accept Secure cookies from http://localhost; turn it off only for other
// plain-HTTP development hosts.
func WithSecure(secure bool) Option { return func(c *config) { c.cookie.Secure = secure } }

// WithHTTPOnly sets the cookie's HttpOnly attribute (default true).
func WithHTTPOnly(httpOnly bool) Option { return func(c *config) { c.cookie.HttpOnly = httpOnly } }

// WithSameSite sets the cookie's SameSite attribute (default Lax): one of
// http.SameSiteLaxMode, http.SameSiteStrictMode and http.SameSiteNoneMode,
// which requires Secure. Any other value, http.SameSiteDefaultMode
// included, makes Middleware fail with ErrInvalidConfig: net/http writes no
// SameSite attribute for it, which leaves the policy to each browser, and
// browsers differ (some send the cookie on every cross-site request).
func WithSameSite(mode http.SameSite) Option { return func(c *config) { c.cookie.SameSite = mode } }

// WithPartitioned sets the cookie's Partitioned attribute (CHIPS; default
// false). It requires Secure.
func WithPartitioned(partitioned bool) Option {
	return func(c *config) { c.cookie.Partitioned = partitioned }
}

// WithLifetime sets the absolute lifetime of a session, counted from its
// creation (default 24h). It is enforced from the sealed or stored record,
// not only by the cookie's Max-Age.
func WithLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithIdleTimeout ends a session that saw no request for d (default 0: no
// idle timeout). Activity is recorded, to the millisecond, at most once per
// tenth of d, so read-only traffic does not write the store on every
// request; a session may therefore end up to a tenth of d early. On a
// server store the activity write is dropped when a concurrent request
// wrote the session meanwhile: that request recorded the activity.
func WithIdleTimeout(d time.Duration) Option { return func(c *config) { c.idleTimeout = d } }

// WithPersistent chooses persistent cookies with Max-Age and Expires (true,
// the default) or browser-session cookies (false). Session.SetPersistent
// overrides it per session.
func WithPersistent(persistent bool) Option { return func(c *config) { c.persistent = persistent } }

// WithMaxRecordSize bounds the encoded session record (default
// DefaultMaxRecordSize, 64 KiB). A request whose session would exceed it
// is answered by the error handler with an error wrapping
// ErrRecordTooLarge (500 by default), before any header is written, and
// nothing is stored: a session is no place for bulk data, and a store
// would otherwise take it (memory, Redis) or fail as if it were down
// (Memcached's 1 MB item limit).
func WithMaxRecordSize(n int) Option { return func(c *config) { c.maxRecord = n } }

// WithCodec replaces the JSON codec.
func WithCodec(codec Codec) Option { return func(c *config) { c.codec = codec } }

// WithErrorHandler replaces the default error handler, which answers 503 for
// errors wrapping ErrUnavailable, 409 for ErrConflict (see
// WithConflictPolicy) and 500 otherwise, with the status text as body.
func WithErrorHandler(h ErrorHandler) Option { return func(c *config) { c.errorHandler = h } }

// WithLogger sets the logger for what cannot reach the client: a change
// after the headers were sent, changes dropped because a concurrent logout
// won, a concurrent request's value overwritten (ErrConflict). The default
// is slog.Default(), looked up when a record is logged, so slog.SetDefault
// after Middleware is built takes effect.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock replaces time.Now, for tests of expiry.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// validate rejects configurations that browsers would silently ignore or
// that would weaken the session's security.
func (c *config) validate() error {
	ck := c.cookie
	ck.Value = "x"
	if err := ck.Valid(); err != nil {
		return errorf("%w: cookie: %w", ErrInvalidConfig, err)
	}
	if ck.Path == "" || ck.Path[0] != '/' {
		return fmt.Errorf("%w: cookie path %q must start with /", ErrInvalidConfig, ck.Path)
	}
	switch {
	case strings.HasPrefix(ck.Name, "__Host-") && (!ck.Secure || ck.Path != "/" || ck.Domain != ""):
		return fmt.Errorf("%w: a __Host- cookie needs Secure, Path=/ and no Domain", ErrInvalidConfig)
	case strings.HasPrefix(ck.Name, "__Secure-") && !ck.Secure:
		return fmt.Errorf("%w: a __Secure- cookie needs Secure", ErrInvalidConfig)
	case ck.SameSite != http.SameSiteLaxMode && ck.SameSite != http.SameSiteStrictMode && ck.SameSite != http.SameSiteNoneMode:
		return fmt.Errorf("%w: SameSite %d: want Lax, Strict or None", ErrInvalidConfig, ck.SameSite)
	case ck.SameSite == http.SameSiteNoneMode && !ck.Secure:
		return fmt.Errorf("%w: SameSite=None needs Secure", ErrInvalidConfig)
	case ck.Partitioned && !ck.Secure:
		return fmt.Errorf("%w: Partitioned needs Secure", ErrInvalidConfig)
	case c.lifetime <= 0:
		return fmt.Errorf("%w: lifetime must be positive", ErrInvalidConfig)
	case c.idleTimeout < 0:
		return fmt.Errorf("%w: idle timeout must not be negative", ErrInvalidConfig)
	case c.maxRecord <= 0:
		return fmt.Errorf("%w: record size limit must be positive", ErrInvalidConfig)
	case c.codec == nil || c.now == nil:
		return fmt.Errorf("%w: nil codec or clock", ErrInvalidConfig)
	}
	if len(ck.Name)+len("=") > MaxCookieSize/2 {
		return fmt.Errorf("%w: cookie name too long", ErrInvalidConfig)
	}
	return nil
}
