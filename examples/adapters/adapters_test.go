package adapters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-httpsession/httpsession"
	"github.com/labstack/echo/v4"
)

func init() { gin.SetMode(gin.ReleaseMode) }

func sessions(t *testing.T, store httpsession.Store, opts ...httpsession.Option) func(http.Handler) http.Handler {
	t.Helper()
	mw, err := httpsession.Middleware(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

func naclStore(t *testing.T) httpsession.Store {
	t.Helper()
	store, err := httpsession.NewNaClCookieStore([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// TestREADMESnippets checks that every //readme: region of adapters.go
// appears, character for character, as a Go code block in the README.
func TestREADMESnippets(t *testing.T) {
	src, err := os.ReadFile("adapters.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	regions := regexp.MustCompile(`(?s)//readme:(\w+)\n\n(.*?)\n//readme:end\n`).FindAllSubmatch(src, -1)
	if len(regions) != 2 {
		t.Fatalf("found %d //readme: regions in adapters.go, want 2 (echo, gin)", len(regions))
	}
	for _, m := range regions {
		block := "```go\n" + string(m[2]) + "```\n"
		if !strings.Contains(string(readme), block) {
			t.Errorf("README.md lacks the %s snippet; copy this block from adapters.go:\n%s", m[1], block)
		}
	}
}

// Visits through each framework: the cookie goes out, comes back, and the
// session survives the round trip.
func TestVisitCounter(t *testing.T) {
	for name, h := range map[string]func(func(http.Handler) http.Handler) http.Handler{
		"echo": func(mw func(http.Handler) http.Handler) http.Handler { return newEcho(mw) },
		"gin":  func(mw func(http.Handler) http.Handler) http.Handler { return newGin(mw) },
	} {
		t.Run(name, func(t *testing.T) {
			for _, store := range []httpsession.Store{naclStore(t), httpsession.NewMemoryStore()} {
				srv := httptest.NewServer(h(sessions(t, store)))
				c := newClient(t, srv.URL)
				for i := 1; i <= 3; i++ {
					resp, body := c.get("/")
					if resp.StatusCode != http.StatusOK || body != fmt.Sprintf("visit %d\n", i) {
						t.Fatalf("request %d: status %d, body %q", i, resp.StatusCode, body)
					}
					if sc := resp.Cookies(); i == 1 && (len(sc) != 1 || sc[0].Name != httpsession.DefaultCookieName || !sc[0].Secure || !sc[0].HttpOnly) {
						t.Fatalf("request %d: Set-Cookie %q", i, resp.Header.Values("Set-Cookie"))
					}
				}
				srv.Close()
			}
		})
	}
}

// Every way a gin handler can answer goes through the session's writer, so
// the cookie is set before the headers leave.
func TestGinWriters(t *testing.T) {
	r := gin.New()
	r.Use(ginMiddleware(sessions(t, naclStore(t))))
	set := func(c *gin.Context) bool {
		s, err := httpsession.Get(c.Request)
		if err != nil {
			c.Abort()
			return false
		}
		return s.Set("k", c.Request.URL.Path) == nil
	}
	r.GET("/string", func(c *gin.Context) {
		if set(c) {
			c.String(http.StatusOK, "ok")
		}
	})
	r.GET("/json", func(c *gin.Context) {
		if set(c) {
			c.JSON(http.StatusCreated, gin.H{"ok": true})
		}
	})
	r.GET("/redirect", func(c *gin.Context) {
		if set(c) {
			c.Redirect(http.StatusSeeOther, "/string")
		}
	})
	r.GET("/write", func(c *gin.Context) {
		if set(c) {
			_, _ = c.Writer.Write([]byte("ok"))
		}
	})
	r.GET("/writestring", func(c *gin.Context) {
		if set(c) {
			_, _ = c.Writer.WriteString("ok")
		}
	})
	r.GET("/flush", func(c *gin.Context) {
		if set(c) {
			c.Writer.Flush()
			_, _ = c.Writer.WriteString("ok")
		}
	})
	r.GET("/abort", func(c *gin.Context) {
		if set(c) {
			c.AbortWithStatus(http.StatusNoContent)
		}
	})
	r.GET("/status", func(c *gin.Context) {
		if set(c) {
			c.Status(http.StatusAccepted)
		}
	})
	r.GET("/headernow", func(c *gin.Context) {
		if set(c) {
			c.Writer.WriteHeaderNow()
		}
	})
	r.GET("/nothing", func(c *gin.Context) { set(c) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	for path, code := range map[string]int{
		"/string": 200, "/json": 201, "/redirect": 303, "/write": 200, "/writestring": 200,
		"/flush": 200, "/abort": 204, "/status": 202, "/headernow": 200, "/nothing": 200,
	} {
		c := newClient(t, srv.URL)
		resp, _ := c.get(path)
		if resp.StatusCode != code || len(resp.Cookies()) != 1 {
			t.Errorf("GET %s: status %d, Set-Cookie %q; want %d and the session cookie", path, resp.StatusCode, resp.Header.Values("Set-Cookie"), code)
		}
	}
}

// A panic in a gin handler saves nothing: gin.Recovery's 500 carries no
// session cookie.
func TestGinPanicSavesNothing(t *testing.T) {
	r := gin.New()
	r.Use(gin.RecoveryWithWriter(io.Discard), ginMiddleware(sessions(t, naclStore(t))))
	r.GET("/", func(c *gin.Context) {
		s, _ := httpsession.Get(c.Request)
		_ = s.Set("k", "v")
		panic("boom")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, _ := newClient(t, srv.URL).get("/")
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("status %d, Set-Cookie %q; want 500 and no cookie", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
}

// downStore is a server that cannot be reached.
type downStore struct{}

var errDown = fmt.Errorf("%w: connection refused", httpsession.ErrUnavailable)

func (downStore) Load(context.Context, string) ([]byte, error) { return nil, errDown }
func (downStore) Save(context.Context, string, []byte, time.Duration) (string, error) {
	return "", errDown
}
func (downStore) Delete(context.Context, string) error { return errDown }

// When the store is down the session middleware answers 503 in both
// frameworks, and the handler's output never reaches the client.
func TestStoreDown(t *testing.T) {
	quiet := httpsession.WithLogger(slog.New(slog.DiscardHandler))
	for name, h := range map[string]http.Handler{
		"echo": newEcho(sessions(t, downStore{}, quiet)),
		"gin":  newGin(sessions(t, downStore{}, quiet)),
	} {
		srv := httptest.NewServer(h)
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.AddCookie(&http.Cookie{Name: httpsession.DefaultCookieName, Value: "abc"})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "visit") || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s: status %d, body %q, Set-Cookie %q; want 503 from the session middleware", name, resp.StatusCode, body, resp.Header.Get("Set-Cookie"))
		}
	}
}

// Why ginMiddleware swaps the writer: the often-quoted adapter that only
// sets c.Request lets gin write straight to the connection, so the session
// cookie is never sent.
func TestNaiveGinAdapterLosesTheCookie(t *testing.T) {
	mw := sessions(t, naclStore(t))
	naive := func(c *gin.Context) {
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Request = r
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
	}
	r := gin.New()
	r.Use(naive)
	r.GET("/", func(c *gin.Context) {
		s, _ := httpsession.Get(c.Request)
		_ = s.Set("k", "v")
		c.String(http.StatusOK, "ok")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	if resp, _ := newClient(t, srv.URL).get("/"); resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("the naive adapter sent the cookie %q; ginMiddleware's writer swap may be unnecessary", resp.Header.Get("Set-Cookie"))
	}
}

// echo's error path: a handler error after the session was changed still
// saves the session, because nothing was written before the handler
// returned; echo's error page goes out with the cookie.
func TestEchoHandlerError(t *testing.T) {
	e := echo.New()
	e.Use(echo.WrapMiddleware(sessions(t, naclStore(t))))
	e.GET("/", func(c echo.Context) error {
		s, _ := httpsession.Get(c.Request())
		_ = s.Set("k", "v")
		return echo.NewHTTPError(http.StatusTeapot, "no")
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	resp, _ := newClient(t, srv.URL).get("/")
	if resp.StatusCode != http.StatusTeapot || len(resp.Cookies()) != 1 {
		t.Fatalf("status %d, Set-Cookie %q; want 418 with the session cookie", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
}

type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, hc: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		c.t.Fatal(err)
	}
	return resp, string(b)
}
