package httpsession

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hijackReply is the response a hijacking handler writes by hand.
const hijackReply = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked"

// hijack hijacks through http.ResponseController (which must reach the
// middleware's Hijack) and answers by hand.
func hijack(w http.ResponseWriter, o *handlerErrors) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		o.add(err)
		http.Error(w, "handler fallback after failed hijack", http.StatusBadGateway)
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString(hijackReply)
	_ = brw.Flush()
}

type lifecycleRow struct {
	name      string
	failSave  bool
	handler   func(w http.ResponseWriter, r *http.Request, o *handlerErrors)
	interim   []int  // 1xx statuses expected before the final response
	status    int    // final status
	body      string // final body
	cookie    bool   // a live session cookie on the final response
	vary      bool   // Vary: Cookie on the final response
	records   int    // server-side records afterwards
	saved     string // substring of the last record written ("" = no check)
	notSaved  string // must not appear in the last record written
	logged    error  // must appear in the log; nil = no ERROR line at all
	handlerEr error  // what the handler must have observed; nil = nothing
}

func TestWriterLifecycle(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 64<<10/16) // 64 KiB: sendfile territory
	file := filepath.Join(dir, "page.txt")
	if err := os.WriteFile(file, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	set := func(o *handlerErrors, r *http.Request, kv ...string) *Session {
		s, err := Get(r)
		o.add(err)
		for i := 0; i+1 < len(kv); i += 2 {
			o.add(s.Set(kv[i], kv[i+1]))
		}
		return s
	}
	rows := []lifecycleRow{
		{
			name:    "untouched, no write",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {},
			status:  200,
		},
		{
			name: "Set, no write",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
			},
			status: 200, cookie: true, vary: true, records: 1, saved: `"k":"v"`,
		},
		{
			name: "read-only, no write",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				s := set(o, r)
				_ = s.Get("k")
			},
			status: 200, vary: true,
		},
		{
			name: "Set, WriteHeader(204) only",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				w.WriteHeader(http.StatusNoContent)
			},
			status: 204, cookie: true, vary: true, records: 1,
		},
		{
			name: "Get, Write, then Set",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				s := set(o, r)
				_, _ = io.WriteString(w, "early")
				o.add(s.Set("k", "late"))
			},
			status: 200, body: "early", vary: true, logged: ErrCommitted, handlerEr: ErrCommitted,
		},
		{
			name: "Write, then first Get and Set",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				_, _ = io.WriteString(w, "early")
				set(o, r, "k", "late")
			},
			status: 200, body: "early", logged: ErrCommitted, handlerEr: ErrCommitted,
		},
		{
			name: "Write, then NewSession and Set",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				_, _ = io.WriteString(w, "early")
				s, err := NewSession(r)
				o.add(err)
				o.add(s.Set("k", "late"))
			},
			status: 200, body: "early", logged: ErrCommitted, handlerEr: ErrCommitted,
		},
		{
			name: "Set, Write, Set again",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				s := set(o, r, "first", "1")
				_, _ = io.WriteString(w, "page")
				o.add(s.Set("second", "2"))
			},
			status: 200, body: "page", cookie: true, vary: true, records: 1,
			saved: `"first"`, notSaved: `"second"`, logged: ErrCommitted, handlerEr: ErrCommitted,
		},
		{
			name: "Set, Flush, Write",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				w.(http.Flusher).Flush()
				_, _ = io.WriteString(w, "after flush")
			},
			status: 200, body: "after flush", cookie: true, vary: true, records: 1,
		},
		{
			name: "Set, ResponseController.Flush, Write",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				o.add(http.NewResponseController(w).Flush())
				_, _ = io.WriteString(w, "after flush")
			},
			status: 200, body: "after flush", cookie: true, vary: true, records: 1,
		},
		{
			name: "untouched Flush",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				o.add(http.NewResponseController(w).Flush())
				_, _ = io.WriteString(w, "x")
			},
			status: 200, body: "x",
		},
		{
			name: "Set, 103 Early Hints, Set, 200",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				s := set(o, r, "before", "1")
				w.Header().Set("Link", "</app.css>; rel=preload; as=style")
				w.WriteHeader(http.StatusEarlyHints)
				o.add(s.Set("after103", "2")) // 103 does not commit
				_, _ = io.WriteString(w, "final")
			},
			interim: []int{103}, status: 200, body: "final", cookie: true, vary: true, records: 1,
			saved: `"after103":"2"`,
		},
		{
			name: "two 103s, then WriteHeader(201)",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				w.Header().Set("Link", "</a.js>; rel=preload; as=script")
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusCreated)
			},
			interim: []int{103, 103}, status: 201, cookie: true, vary: true, records: 1,
		},
		{
			name: "Set, io.Copy from *os.File (ReadFrom)",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				if _, ok := w.(io.ReaderFrom); !ok {
					o.add(errors.New("wrapped writer is not an io.ReaderFrom"))
				}
				f, err := os.Open(file)
				if err != nil {
					o.add(err)
					return
				}
				defer f.Close()
				_, err = io.Copy(w, f)
				o.add(err)
			},
			status: 200, body: big, cookie: true, vary: true, records: 1,
		},
		{
			name: "Set, ReadFrom(strings.Reader)",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				_, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("read from reader"))
				o.add(err)
			},
			status: 200, body: "read from reader", cookie: true, vary: true, records: 1,
		},
		{
			name: "Set, io.Copy from strings.Reader",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				_, err := io.Copy(w, strings.NewReader("copied"))
				o.add(err)
			},
			status: 200, body: "copied", cookie: true, vary: true, records: 1,
		},
		{
			name: "Set, Hijack",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				hijack(w, o)
			},
			// The record was written, then deleted: no browser can
			// present its ID.
			status: 200, body: "hijacked", records: 0, saved: `"k":"v"`, logged: ErrHijacked,
		},
		{
			name: "untouched Hijack",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				hijack(w, o)
			},
			status: 200, body: "hijacked",
		},
		{
			name: "read-only Hijack",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				_ = set(o, r).Get("k")
				hijack(w, o)
			},
			status: 200, body: "hijacked",
		},
		{
			name: "Set, Flush, Hijack (cookie already sent)",
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				w.Header().Set("Content-Length", "2")
				_, _ = io.WriteString(w, "ok")
				o.add(http.NewResponseController(w).Flush())
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					o.add(err)
					return
				}
				conn.Close()
			},
			status: 200, body: "ok", cookie: true, vary: true, records: 1,
		},
		{
			name:     "failing store, Set, Write",
			failSave: true,
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusOK)
				_, err := io.WriteString(w, "<p>SECRET page</p>")
				o.add(err)
			},
			status: 503, body: "Service Unavailable\n", vary: true, logged: ErrUnavailable, handlerEr: ErrUnavailable,
		},
		{
			name:     "failing store, Set, Flush",
			failSave: true,
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				o.add(http.NewResponseController(w).Flush())
				_, _ = io.WriteString(w, "SECRET")
			},
			status: 503, body: "Service Unavailable\n", vary: true, logged: ErrUnavailable, handlerEr: ErrUnavailable,
		},
		{
			name:     "failing store, Set, ReadFrom",
			failSave: true,
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				_, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("SECRET"))
				o.add(err)
			},
			status: 503, body: "Service Unavailable\n", vary: true, logged: ErrUnavailable, handlerEr: ErrUnavailable,
		},
		{
			name:     "failing store, Set, no write",
			failSave: true,
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
			},
			status: 503, body: "Service Unavailable\n", vary: true, logged: ErrUnavailable,
		},
		{
			name:     "failing store, Set, Hijack",
			failSave: true,
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				hijack(w, o)
			},
			status: 503, body: "Service Unavailable\n", vary: true, logged: ErrUnavailable, handlerEr: ErrUnavailable,
		},
		{
			name:     "failing store, Set, 103, 200",
			failSave: true,
			handler: func(w http.ResponseWriter, r *http.Request, o *handlerErrors) {
				set(o, r, "k", "v")
				w.Header().Set("Link", "</app.css>; rel=preload; as=style")
				w.WriteHeader(http.StatusEarlyHints)
				_, err := io.WriteString(w, "SECRET")
				o.add(err)
			},
			interim: []int{103}, status: 503, body: "Service Unavailable\n", vary: true,
			logged: ErrUnavailable, handlerEr: ErrUnavailable,
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			store, backend := countedMemoryStore(nil)
			if row.failSave {
				backend.failWrite = errCause
			}
			obs := &handlerErrors{}
			app := startApp(t, store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				row.handler(w, r, obs)
			}))
			resps := rawGet(t, app.srv.Listener.Addr().String(), "/")
			app.wait(t)

			final := resps[len(resps)-1]
			var interim []int
			for _, r := range resps[:len(resps)-1] {
				interim = append(interim, r.status)
				if v := r.header.Values("Set-Cookie"); len(v) != 0 {
					t.Errorf("%d interim response carries Set-Cookie %v", r.status, v)
				}
				if r.header.Get("Link") == "" {
					t.Errorf("%d interim response lost its Link header", r.status)
				}
			}
			if fmt.Sprint(interim) != fmt.Sprint(row.interim) {
				t.Errorf("interim responses %v, want %v", interim, row.interim)
			}
			if final.status != row.status {
				t.Errorf("status %d, want %d", final.status, row.status)
			}
			if final.body != row.body {
				t.Errorf("body %.80q (%d bytes), want %.80q (%d bytes)", final.body, len(final.body), row.body, len(row.body))
			}
			ck, raw := setCookie(final.header, "session")
			if got := ck != nil && ck.MaxAge > 0 && ck.Value != ""; got != row.cookie {
				t.Errorf("live session cookie = %v, want %v (Set-Cookie %q)", got, row.cookie, raw)
			}
			if !row.cookie && ck != nil {
				t.Errorf("unexpected Set-Cookie %q", raw)
			}
			if got := varyCookieCount(final.header) == 1; got != row.vary {
				t.Errorf("Vary: Cookie = %v, want %v (%q)", got, row.vary, final.header.Values("Vary"))
			}
			if n := backend.Len(); n != row.records {
				t.Errorf("%d records, want %d", n, row.records)
			}
			if row.saved != "" && !strings.Contains(backend.lastWritten(), row.saved) {
				t.Errorf("record %s lacks %s", backend.lastWritten(), row.saved)
			}
			if row.notSaved != "" && strings.Contains(backend.lastWritten(), row.notSaved) {
				t.Errorf("record %s has %s", backend.lastWritten(), row.notSaved)
			}
			log := app.log.String()
			if row.logged == nil {
				if strings.Contains(log, "level=ERROR") {
					t.Errorf("unexpected error log: %s", log)
				}
			} else if !strings.Contains(log, strings.TrimPrefix(row.logged.Error(), "httpsession: ")) {
				t.Errorf("log lacks %q: %s", row.logged, log)
			}
			errs := obs.all()
			if row.handlerEr == nil {
				if len(errs) != 0 {
					t.Errorf("handler observed errors %v", errs)
				}
			} else {
				found := false
				for _, err := range errs {
					found = found || errors.Is(err, row.handlerEr)
				}
				if !found {
					t.Errorf("handler observed %v, want an error wrapping %v", errs, row.handlerEr)
				}
			}
		})
	}
}

// Handlers and middlewares type-assert and unwrap the writer; the wrapper
// must expose what net/http's writer has and reach the rest via Unwrap.
func TestWriterInterfaces(t *testing.T) {
	store, _ := countedMemoryStore(nil)
	obs := &handlerErrors{}
	app := startApp(t, store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			obs.add(errors.New("not an http.Flusher"))
		}
		if _, ok := w.(http.Hijacker); !ok {
			obs.add(errors.New("not an http.Hijacker"))
		}
		if _, ok := w.(io.ReaderFrom); !ok {
			obs.add(errors.New("not an io.ReaderFrom"))
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			obs.add(errors.New("no Unwrap"))
		} else if u.Unwrap() == w {
			obs.add(errors.New("Unwrap returns the wrapper itself"))
		}
		// Calls the middleware does not handle reach net/http via Unwrap.
		rc := http.NewResponseController(w)
		obs.add(rc.SetWriteDeadline(time.Now().Add(time.Minute)))
		obs.add(rc.SetReadDeadline(time.Now().Add(time.Minute)))
		obs.add(rc.EnableFullDuplex())
		s, err := Get(r)
		obs.add(err)
		obs.add(s.Set("k", "v"))
		_, _ = io.WriteString(w, "ok")
	}))
	r := app.do(t, nil, "/")
	if r.body != "ok" || countSetCookies(r.header, "session") != 1 {
		t.Errorf("response %q, cookie %v", r.body, r.header.Values("Set-Cookie"))
	}
	for _, err := range obs.all() {
		t.Error(err)
	}
}

// A FlushError on a writer that cannot flush still commits, and reports
// http.ErrNotSupported rather than pretending to have flushed.
func TestWriterFlushUnsupported(t *testing.T) {
	mw := newMiddleware(t, NewInsecureCookieStore())
	var flushErr error
	h := mw(withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v")
		flushErr = http.NewResponseController(w).Flush()
	}))
	w := &discardWriter{h: make(http.Header)}
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if !errors.Is(flushErr, http.ErrNotSupported) {
		t.Errorf("Flush on a non-flushing writer: %v, want http.ErrNotSupported", flushErr)
	}
	if countSetCookies(w.h, "session") != 1 {
		t.Errorf("Flush did not commit the session: %v", w.h)
	}
}

// An error response after a store failure is not glued to output the
// handler already produced: the commit happens before the first byte.
func TestWriterErrorNotGluedAfterPartialOutput(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	backend.failWrite = errCause
	app := startApp(t, store, withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v")
		w.Header().Set("Content-Type", "text/html")
		for i := range 100 {
			fmt.Fprintf(w, "<p>row %d</p>", i)
		}
	}))
	conn, err := net.Dial("tcp", app.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	app.wait(t)
	text := string(all)
	if strings.Count(text, "HTTP/1.1 ") != 1 || !strings.HasPrefix(text, "HTTP/1.1 503 ") {
		t.Errorf("want exactly one 503 response, got:\n%s", text)
	}
	if strings.Contains(text, "row") {
		t.Errorf("handler output glued to the error response:\n%s", text)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(text)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "Service Unavailable\n" {
		t.Errorf("body %q", body)
	}
}

// rawGet sends one GET over a fresh TCP connection and returns every
// response read from it: the 1xx interim responses, then the final one.
func rawGet(t *testing.T, addr, path string, cookies ...*http.Cookie) []response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range cookies {
		req.Header.Add("Cookie", ck.Name+"="+ck.Value)
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []response
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("read response %d: %v", len(out)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		out = append(out, response{status: resp.StatusCode, header: resp.Header, body: string(body)})
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return out
		}
	}
}
