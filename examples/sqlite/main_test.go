package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain runs main instead of the tests when the test binary is started
// as the example's server (see startServer).
func TestMain(m *testing.M) {
	if os.Getenv("HTTPSESSION_EXAMPLE_SERVE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startServer runs this test binary as the example's server, a process of
// its own, on a free port and the database file db, and waits until it
// listens. stop kills it.
func startServer(t *testing.T, db string) (base string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "-addr", addr, "-db", db)
	cmd.Env = append(os.Environ(), "HTTPSESSION_EXAMPLE_SERVE=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("server: %s", sc.Text())
			if strings.Contains(sc.Text(), "listening") {
				close(listening)
			}
		}
	}()
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the server did not start")
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return "http://" + addr, stop
}

// client follows no redirects and keeps the session cookie in a jar that
// outlives the server process, as a browser would.
type client struct {
	http.Client
	cookie *http.Cookie
}

func (c *client) do(t *testing.T, method, u string, form url.Values) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.Name == "session" {
			if ck.MaxAge < 0 {
				c.cookie = nil
			} else {
				c.cookie = ck
			}
		}
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// TestSessionsSurviveRestart logs in, kills the server process, starts a
// new one on the same file: the same cookie is still signed in. After a
// logout and another restart, it is not.
func TestSessionsSurviveRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sessions.db")
	base, stop := startServer(t, db)
	c := &client{Client: http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	if status, loc, _ := c.do(t, "GET", base+"/account", nil); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("anonymous /account: %d %q, want a redirect to the login form", status, loc)
	}
	if c.cookie != nil {
		t.Fatal("an anonymous visit set a cookie")
	}
	if status, _, _ := c.do(t, "POST", base+"/login", url.Values{"username": {"alice"}, "password": {"wrong"}}); status != http.StatusOK || c.cookie != nil {
		t.Fatalf("wrong password: %d, cookie %v", status, c.cookie)
	}
	if status, loc, _ := c.do(t, "POST", base+"/login", url.Values{"username": {"alice"}, "password": {"wonderland"}, "next": {"/account"}}); status != http.StatusSeeOther || loc != "/account" || c.cookie == nil {
		t.Fatalf("login: %d %q, cookie %v", status, loc, c.cookie)
	}
	cookie := c.cookie.Value
	wantAccount := func(when string) {
		t.Helper()
		status, _, body := c.do(t, "GET", base+"/account", nil)
		if status != http.StatusOK || !strings.Contains(body, `<b id="user">alice</b>`) {
			t.Fatalf("%s: /account %d, want alice's page:\n%s", when, status, body)
		}
	}
	wantAccount("before the restart")

	stop()
	base, stop = startServer(t, db)
	c.cookie = &http.Cookie{Name: "session", Value: cookie}
	wantAccount("after the restart")

	if status, _, _ := c.do(t, "POST", base+"/logout", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("logout: %d", status)
	}
	stop()
	base, _ = startServer(t, db)
	c.cookie = &http.Cookie{Name: "session", Value: cookie}
	if status, loc, _ := c.do(t, "GET", base+"/account", nil); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("the logged-out cookie after a restart: %d %q, want a redirect to the login form", status, loc)
	}
}
