package httpsession_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-httpsession/httpsession"
)

// The examples use fixed keys so that their output is reproducible. A real
// service reads 32 random bytes (openssl rand -base64 32) from its secret
// store.
var (
	exampleKey    = []byte("an example key, 32 bytes long!!!")
	exampleOldKey = []byte("the old example key, 32 bytes!!!")
)

// A visit counter kept in an encrypted cookie, seen through a browser with
// a cookie jar.
func Example() {
	store, err := httpsession.NewNaClCookieStore(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return // the middleware's error handler answers
		}
		visits, _ := httpsession.GetAs[int](session, "visits")
		visits++
		if err := session.Set("visits", visits); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit number %d", visits)
	})

	srv := httptest.NewServer(sessions(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// visit number 1
	// visit number 2
	// visit number 3
}

// Get returns the request's session, loaded on first use. Without the
// middleware it returns ErrNoMiddleware rather than panicking.
func ExampleGet() {
	sessions, err := httpsession.Middleware(httpsession.NewMemoryStore())
	if err != nil {
		log.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if errors.Is(err, httpsession.ErrNoMiddleware) {
			fmt.Println("error:", err)
			return
		}
		if err != nil {
			return // the store is down: the middleware's error handler answers
		}
		again, _ := httpsession.Get(r)
		fmt.Println("new:", session.IsNew(), "same object:", session == again)
	})

	sessions(handler).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://example.com/", nil))
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://example.com/", nil))
	// Output:
	// new: true same object: true
	// error: httpsession: request did not pass through the session middleware
}

// Log in with NewIdentity: the data collected before login (a cart) is
// kept, but under a new session ID, so an ID planted before login
// (session fixation) is worthless afterwards.
func ExampleSession_NewIdentity() {
	sessions, err := httpsession.Middleware(httpsession.NewMemoryStore())
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/add", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		session.Set("cart", "book")
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		// ... check the password, then:
		session.NewIdentity()
		session.Set("user", "alice")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		user, _ := httpsession.GetAs[string](session, "user")
		cart, _ := httpsession.GetAs[string](session, "cart")
		fmt.Fprintf(w, "user=%q cart=%q", user, cart)
	})

	srv := httptest.NewServer(sessions(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(path string) string {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	u, _ := url.Parse(srv.URL)
	sessionID := func() string {
		for _, c := range jar.Cookies(u) {
			if c.Name == httpsession.DefaultCookieName {
				return c.Value
			}
		}
		return ""
	}

	get("/add")
	before := sessionID()
	get("/login")
	after := sessionID()
	fmt.Println(get("/"))
	fmt.Println("new session ID:", before != after)

	// The pre-login ID no longer names a session.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: httpsession.DefaultCookieName, Value: before})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println("old ID:", string(body))
	// Output:
	// user="alice" cart="book"
	// new session ID: true
	// old ID: user="" cart=""
}

// Log out with Invalidate: the data is dropped and the cookie expired.
func ExampleSession_Invalidate() {
	store, err := httpsession.NewNaClCookieStore(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		session.NewIdentity()
		session.Set("user", "alice")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		session.Invalidate()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		if user, err := httpsession.GetAs[string](session, "user"); err == nil {
			fmt.Fprintf(w, "Hello, %s", user)
			return
		}
		fmt.Fprint(w, "Hello, Anonymous")
	})

	srv := httptest.NewServer(sessions(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(path string) *http.Response {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		return resp
	}
	show := func(resp *http.Response) {
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(string(body))
	}

	get("/login").Body.Close()
	show(get("/"))
	logout := get("/logout")
	logout.Body.Close()
	fmt.Println("cookie deleted:", strings.Contains(logout.Header.Get("Set-Cookie"), "Max-Age=0"))
	show(get("/"))
	// Output:
	// Hello, alice
	// cookie deleted: true
	// Hello, Anonymous
}

// A flash message survives one redirect and is shown once.
func ExampleSession_AddFlash() {
	sessions, err := httpsession.Middleware(httpsession.NewMemoryStore())
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /save", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		// ... save the form, then:
		session.AddFlash("Saved.")
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		flashes := session.Flashes()
		if len(flashes) == 0 {
			fmt.Fprint(w, "(no messages)")
			return
		}
		fmt.Fprint(w, strings.Join(flashes, " "))
	})

	srv := httptest.NewServer(sessions(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	show := func(resp *http.Response, err error) {
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(string(body))
	}

	show(client.Post(srv.URL+"/save", "text/plain", nil)) // follows the 303
	show(client.Get(srv.URL + "/"))                       // reload
	// Output:
	// Saved.
	// (no messages)
}

// Remember me: a long lifetime and a persistent cookie when the box is
// ticked, a browser-session cookie when it is not. Both settings live in
// the record's metadata, not in the session's keys.
func ExampleSession_SetLifetime() {
	now := func() time.Time { return time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC) }
	store, err := httpsession.NewNaClCookieStore(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store, httpsession.WithLifetime(8*time.Hour), httpsession.WithClock(now))
	if err != nil {
		log.Fatal(err)
	}
	login := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		session.NewIdentity()
		session.Set("user", "alice")
		if r.FormValue("remember") == "on" {
			session.SetLifetime(30 * 24 * time.Hour)
		} else {
			session.SetPersistent(false)
		}
		fmt.Println("expires:", session.Expires().Format(time.DateTime), "keys:", session.Keys())
	}))

	for _, form := range []string{"remember=on", "remember=off"} {
		w := httptest.NewRecorder()
		login.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/login?"+form, nil))
		cookie := w.Result().Cookies()[0]
		fmt.Printf("%s: Max-Age=%d\n", form, cookie.MaxAge)
	}
	// Output:
	// expires: 2025-01-31 12:00:00 keys: [user]
	// remember=on: Max-Age=2592000
	// expires: 2025-01-01 20:00:00 keys: [user]
	// remember=off: Max-Age=0
}

// GetAs reads a value back as its own type after a round trip through the
// cookie, without registering types.
func ExampleGetAs() {
	type Profile struct {
		Name  string
		Admin bool
	}
	store, err := httpsession.NewNaClCookieStore(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		session.Set("count", 42)
		session.Set("since", time.Date(2024, 2, 29, 8, 30, 0, 0, time.UTC))
		session.Set("token", []byte{0xde, 0xad, 0xbe, 0xef})
		session.Set("profile", Profile{Name: "alice", Admin: true})
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		count, _ := httpsession.GetAs[int](session, "count")
		since, _ := httpsession.GetAs[time.Time](session, "since")
		token, _ := httpsession.GetAs[[]byte](session, "token")
		profile, _ := httpsession.GetAs[Profile](session, "profile")
		fmt.Println(count, since.Format(time.RFC3339), fmt.Sprintf("%x", token), profile)

		_, err = httpsession.GetAs[int](session, "missing")
		fmt.Println(errors.Is(err, httpsession.ErrMissingKey))
		_, err = httpsession.GetAs[int](session, "profile")
		fmt.Println(errors.Is(err, httpsession.ErrDecode))
	})

	srv := httptest.NewServer(sessions(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	for _, path := range []string{"/set", "/get"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	// Output:
	// 42 2024-02-29T08:30:00Z deadbeef {alice true}
	// true
	// true
}

// A NaCl cookie store reads aiohttp_session's NaClCookieStorage cookies
// given the same key, and writes cookies aiohttp_session reads.
func ExampleNewNaClCookieStore() {
	key := []byte("Thirty  two  length  bytes  key.") // aiohttp_session's documentation key
	store, err := httpsession.NewNaClCookieStore(key)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store,
		httpsession.WithCookieName("AIOHTTP_SESSION"),
		httpsession.WithClock(func() time.Time { return time.Unix(1700000060, 0) }))
	if err != nil {
		log.Fatal(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		a, err := httpsession.GetAs[int](session, "a")
		fmt.Println("a =", a, err, "created", session.Created().Unix())
	}))

	// A cookie written by a Python service with aiohttp_session.
	r := httptest.NewRequest("GET", "https://example.com/", nil)
	r.Header.Set("Cookie", "AIOHTTP_SESSION=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXhiEaTCpeLavmGqBg97m2JZNOajbEBqQnCjzbPyAhcyjOW4Tcgtzrow6P5+f4WwXV00xrhrzUXCe7PkES")
	handler.ServeHTTP(httptest.NewRecorder(), r)

	// What the cookie holds, as the store opens it.
	data, err := store.Load(context.Background(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXhiEaTCpeLavmGqBg97m2JZNOajbEBqQnCjzbPyAhcyjOW4Tcgtzrow6P5+f4WwXV00xrhrzUXCe7PkES")
	fmt.Println(string(data), err)
	// Output:
	// a = 1 <nil> created 1700000000
	// {"created": 1700000000, "session": {"a": 1}} <nil>
}

// Key rotation: put the new key first and keep the old one until the
// cookies it sealed have expired. The first key seals, every key opens.
func ExampleNewNaClCookieStore_rotation() {
	ctx := context.Background()
	oldStore, _ := httpsession.NewNaClCookieStore(exampleOldKey)
	oldCookie, _ := oldStore.Save(ctx, "", []byte(`{"created":1,"session":{}}`), time.Hour)

	// Deploy 1: the new key seals, the old key still opens.
	rotating, err := httpsession.NewNaClCookieStore(exampleKey, exampleOldKey)
	if err != nil {
		log.Fatal(err)
	}
	_, err = rotating.Load(ctx, oldCookie)
	fmt.Println("old cookie opens during rotation:", err == nil)
	newCookie, _ := rotating.Save(ctx, "", []byte(`{"created":2,"session":{}}`), time.Hour)
	_, err = oldStore.Load(ctx, newCookie)
	fmt.Println("new cookie sealed with the old key:", err == nil)

	// Deploy 2, once the lifetime has passed: the old key is dropped.
	rotated, _ := httpsession.NewNaClCookieStore(exampleKey)
	_, err = rotated.Load(ctx, newCookie)
	fmt.Println("new cookie opens:", err == nil)
	_, err = rotated.Load(ctx, oldCookie)
	fmt.Println("old cookie opens:", err == nil, errors.Is(err, httpsession.ErrNotFound))

	// Keys are checked when the store is built.
	_, err = httpsession.NewNaClCookieStore(exampleKey, exampleKey)
	fmt.Println("repeated key:", errors.Is(err, httpsession.ErrInvalidKey))
	_, err = httpsession.NewNaClCookieStore([]byte("too short"))
	fmt.Println("short key:", errors.Is(err, httpsession.ErrInvalidKey))
	// Output:
	// old cookie opens during rotation: true
	// new cookie sealed with the old key: false
	// new cookie opens: true
	// old cookie opens: false true
	// repeated key: true
	// short key: true
}

// An encrypted cookie store: the client cannot read or change the session.
// Keys are 32 to 64 bytes, for example from an environment variable in
// standard base64.
func ExampleNewEncryptedCookieStore() {
	key, err := base64.StdEncoding.DecodeString("YW4gZXhhbXBsZSBrZXksIDMyIGJ5dGVzIGxvbmchISE=") // os.Getenv("SESSION_KEY")
	if err != nil {
		log.Fatal(err)
	}
	store, err := httpsession.NewEncryptedCookieStore(key)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		if session.IsNew() {
			session.Set("secret", "hunter2")
			return
		}
		secret, _ := httpsession.GetAs[string](session, "secret")
		fmt.Println("read back:", secret)
	}))

	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	cookie := w.Result().Cookies()[0]
	fmt.Println("cookie shows the secret:", strings.Contains(cookie.Value, "hunter2"))

	r := httptest.NewRequest("GET", "https://example.com/", nil)
	r.AddCookie(cookie)
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// cookie shows the secret: false
	// read back: hunter2
}

// A signed cookie store: the client can read the session (keep secrets out
// of it) but any change makes the cookie invalid, which reads as a new,
// empty session.
func ExampleNewSignedCookieStore() {
	store, err := httpsession.NewSignedCookieStore(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		if r.URL.Path == "/login" {
			session.Set("role", "user")
			return
		}
		role, _ := httpsession.GetAs[string](session, "role")
		fmt.Printf("role=%q new=%v\n", role, session.IsNew())
	}))

	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/login", nil))
	cookie := w.Result().Cookies()[0]

	payload, signature, _ := strings.Cut(cookie.Value, ".")
	record, _ := base64.RawURLEncoding.DecodeString(payload)
	fmt.Println("client can read it:", strings.Contains(string(record), `"role":"user"`))

	for _, value := range []string{
		cookie.Value, // genuine
		base64.RawURLEncoding.EncodeToString(bytes.Replace(record, []byte(`"user"`), []byte(`"root"`), 1)) + "." + signature, // forged
	} {
		r := httptest.NewRequest("GET", "https://example.com/", nil)
		r.AddCookie(&http.Cookie{Name: cookie.Name, Value: value})
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// client can read it: true
	// role="user" new=false
	// role="" new=true
}

// A memory store keeps sessions in this process; the cookie carries only a
// random session ID, so sessions can be revoked and hold any amount of data.
func ExampleNewMemoryStore() {
	store := httpsession.NewMemoryStore()
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		if session.IsNew() {
			session.Set("notes", strings.Repeat("a long note ", 1000))
			return
		}
		notes, _ := httpsession.GetAs[string](session, "notes")
		fmt.Println("notes:", len(notes), "bytes; session ID:", len(session.ID()), "characters")
	}))

	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	cookie := w.Result().Cookies()[0]
	fmt.Println("cookie:", len(cookie.Value), "characters")

	r := httptest.NewRequest("GET", "https://example.com/", nil)
	r.AddCookie(cookie)
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// cookie: 43 characters
	// notes: 12000 bytes; session ID: 43 characters
}

// countingStore wraps a server store to count its loads, as a metrics
// wrapper would. Embedding VersionedStore keeps the conditional commits
// (the middleware loads through LoadVersion and saves through Commit);
// Unwrap lets the middleware see the server store inside.
type countingStore struct {
	httpsession.VersionedStore
	loads int
}

func (s *countingStore) LoadVersion(ctx context.Context, token string) ([]byte, uint64, error) {
	s.loads++
	return s.VersionedStore.LoadVersion(ctx, token)
}

func (s *countingStore) Unwrap() httpsession.Store { return s.VersionedStore }

// A Store can be wrapped, for metrics or tracing. With Unwrap the session
// still has its server-side ID; without it, ID would be empty. A wrapper
// that is a VersionedStore keeps concurrent requests' changes merged; one
// that is only a Store makes the last writer win.
func ExampleStore() {
	store := &countingStore{VersionedStore: httpsession.NewMemoryStore()}
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		if session.IsNew() {
			session.Set("user", "alice")
			return
		}
		fmt.Println("loads:", store.loads, "ID characters:", len(session.ID()))
	}))

	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	r := httptest.NewRequest("GET", "https://example.com/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// loads: 1 ID characters: 43
}

// mapBackend is a minimal Backend over a map, the shape of an adapter for
// any database: four calls, keys already hashed and prefixed.
type mapBackend struct {
	mu   sync.Mutex
	data map[string][]byte
}

func (b *mapBackend) Get(_ context.Context, key string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.data[key]
	if !ok {
		return nil, httpsession.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (b *mapBackend) Add(_ context.Context, key string, value []byte, _ time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.data[key]; ok {
		return httpsession.ErrExists
	}
	b.data[key] = bytes.Clone(value)
	return nil
}

func (b *mapBackend) Replace(_ context.Context, key string, value []byte, _ time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.data[key]; !ok {
		return httpsession.ErrNotFound // the session was deleted: a logout wins
	}
	b.data[key] = bytes.Clone(value)
	return nil
}

func (b *mapBackend) Delete(_ context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.data, key)
	return nil
}

// NewServerStore turns any database with get, add-if-absent,
// replace-if-present and delete into a session store. The store mints the
// IDs and hashes them before they reach the backend.
func ExampleNewServerStore() {
	backend := &mapBackend{data: map[string][]byte{}}
	store := httpsession.NewServerStore(backend, httpsession.WithKeyPrefix("myapp:session:"))
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		session.Set("user", "alice")
	}))
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	id := w.Result().Cookies()[0].Value // the session ID

	fmt.Println("records:", len(backend.data))
	for key, value := range backend.data {
		fmt.Println("key is prefixed:", strings.HasPrefix(key, "myapp:session:"))
		fmt.Println("key hides the ID:", !strings.Contains(key, id))
		fmt.Println("value holds the user:", bytes.Contains(value, []byte(`"user":"alice"`)))
	}
	// Output:
	// records: 1
	// key is prefixed: true
	// key hides the ID: true
	// value holds the user: true
}

// Middleware options: a __Host- cookie, a strict SameSite policy, an
// absolute lifetime and an idle timeout. Settings that browsers would
// reject are errors at construction.
func ExampleMiddleware() {
	now := func() time.Time { return time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC) }
	store, err := httpsession.NewNaClCookieStore(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store,
		httpsession.WithCookieName("__Host-sid"),
		httpsession.WithSameSite(http.SameSiteStrictMode),
		httpsession.WithLifetime(12*time.Hour),
		httpsession.WithIdleTimeout(30*time.Minute),
		httpsession.WithClock(now),
	)
	if err != nil {
		log.Fatal(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		session.Set("user", "alice")
	}))
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	_, attributes, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	fmt.Println("Set-Cookie: __Host-sid=…;" + attributes)
	fmt.Println("Vary:", w.Header().Get("Vary"))
	fmt.Println("Cache-Control:", w.Header().Get("Cache-Control"))

	_, err = httpsession.Middleware(store,
		httpsession.WithCookieName("__Host-sid"),
		httpsession.WithDomain("example.com"))
	fmt.Println(errors.Is(err, httpsession.ErrInvalidConfig))
	// Output:
	// Set-Cookie: __Host-sid=…; Path=/; Expires=Wed, 01 Jan 2025 12:30:00 GMT; Max-Age=1800; HttpOnly; Secure; SameSite=Strict
	// Vary: Cookie
	// Cache-Control: no-store
	// true
}

// flateCodec is a custom Codec: JSONCodec's values, with whole records
// compressed so that large sessions fit in a cookie.
type flateCodec struct{ httpsession.JSONCodec }

func (c flateCodec) EncodeRecord(rec *httpsession.Record) ([]byte, error) {
	data, err := c.JSONCodec.EncodeRecord(rec)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c flateCodec) DecodeRecord(data []byte, rec *httpsession.Record) error {
	// Limit what a record may inflate to.
	plain, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), 1<<20))
	if err != nil {
		return err
	}
	return c.JSONCodec.DecodeRecord(plain, rec)
}

// WithCodec replaces the record format, here to compress the record.
func ExampleWithCodec() {
	store, err := httpsession.NewNaClCookieStore(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		session, err := httpsession.Get(r)
		if err != nil {
			return
		}
		if session.IsNew() {
			session.Set("history", strings.Repeat("/page ", 300))
			return
		}
		history, _ := httpsession.GetAs[string](session, "history")
		fmt.Println("read back:", len(history), "bytes")
	}

	for _, codec := range []httpsession.Codec{httpsession.JSONCodec{}, flateCodec{}} {
		sessions, err := httpsession.Middleware(store, httpsession.WithCodec(codec))
		if err != nil {
			log.Fatal(err)
		}
		h := sessions(http.HandlerFunc(handler))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
		cookie := w.Result().Cookies()[0]
		fmt.Printf("%T: cookie over 2000 bytes: %v\n", codec, len(cookie.Value) > 2000)
		r := httptest.NewRequest("GET", "https://example.com/", nil)
		r.AddCookie(cookie)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// httpsession.JSONCodec: cookie over 2000 bytes: true
	// read back: 1800 bytes
	// httpsession_test.flateCodec: cookie over 2000 bytes: false
	// read back: 1800 bytes
}

// Two requests of one session overlap, as tabs and fetch calls do: A loads
// the session and is still working when B counts a visit and picks a
// theme. On a server-side store A's commit finds B's write and merges: the
// counter, which has a MergeFunc, keeps both visits; "theme", which both
// changed, takes A's value and the conflict is logged as an error wrapping
// ErrConflict (WithConflictPolicy(ConflictFail) would answer 409 instead).
func ExampleWithMerge() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // reproducible output
			}
			return a
		},
	}))
	sessions, err := httpsession.Middleware(httpsession.NewMemoryStore(),
		httpsession.WithLogger(logger),
		httpsession.WithMerge("visits", httpsession.Merge(func(base, mine, theirs int) int {
			return theirs + mine - base // both requests' increments
		})))
	if err != nil {
		log.Fatal(err)
	}
	loaded, resume := make(chan struct{}), make(chan struct{})
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := httpsession.Get(r)
		if err != nil {
			return
		}
		if r.URL.Query().Has("slow") {
			close(loaded)
			<-resume
		}
		visits, _ := httpsession.GetAs[int](s, "visits")
		s.Set("visits", visits+1)
		if theme := r.URL.Query().Get("theme"); theme != "" {
			s.Set("theme", theme)
		}
		theme, _ := httpsession.GetAs[string](s, "theme")
		fmt.Fprintf(w, "visits=%d theme=%s", visits+1, theme)
	}))
	do := func(target string, cookie *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://example.com"+target, nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}
	cookie := do("/?theme=light", nil).Result().Cookies()[0]

	a := make(chan string)
	go func() { a <- do("/?slow&theme=blue", cookie).Body.String() }()
	<-loaded
	fmt.Println("B:", do("/?theme=dark", cookie).Body.String())
	close(resume)
	fmt.Println("A:", <-a)
	fmt.Println("now:", do("/", cookie).Body.String())
	// Output:
	// B: visits=2 theme=dark
	// level=WARN msg="httpsession: a concurrent request's change was overwritten" err="httpsession: session changed by a concurrent request: keys [\"theme\"]" conflicts=1 path=/
	// A: visits=2 theme=blue
	// now: visits=4 theme=blue
}

// Code that has only the request's context, such as a service layer,
// reaches the session through it.
func ExampleFromContext() {
	sessions, err := httpsession.Middleware(httpsession.NewMemoryStore())
	if err != nil {
		log.Fatal(err)
	}
	greet := func(ctx context.Context) string { // e.g. a service method
		s, err := httpsession.FromContext(ctx)
		if err != nil {
			return "no session: " + err.Error()
		}
		name, _ := httpsession.GetAs[string](s, "name")
		return "hello, " + name
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := httpsession.Get(r); err == nil && s.IsNew() {
			s.Set("name", "alice")
		}
		fmt.Println(greet(r.Context()))
	}))
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	r := httptest.NewRequest("GET", "https://example.com/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	handler.ServeHTTP(httptest.NewRecorder(), r)
	fmt.Println(greet(context.Background()))
	// Output:
	// hello, alice
	// hello, alice
	// no session: httpsession: request did not pass through the session middleware
}

// Bind the session to its user at login; list the user's sessions and log
// out the other devices.
func ExampleSession_SetOwner() {
	store := httpsession.NewMemoryStore()
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, err := httpsession.Get(r)
		if err != nil {
			return
		}
		// ... check the credentials, then:
		if err := s.SetOwner("user-42"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.SetLabel(r.FormValue("device"))
	})
	mux.HandleFunc("/sessions", func(w http.ResponseWriter, r *http.Request) {
		s, err := httpsession.Get(r)
		if err != nil {
			return
		}
		list, _ := s.ListSessions()
		for _, info := range list {
			fmt.Fprintf(w, "%s current=%t; ", info.Label, info.Current)
		}
	})
	mux.HandleFunc("/logout-others", func(w http.ResponseWriter, r *http.Request) {
		s, err := httpsession.Get(r)
		if err != nil {
			return
		}
		_ = s.RevokeOwner(true) // keep this session
	})
	srv := httptest.NewServer(sessions(mux))
	defer srv.Close()

	browser := func() func(path string) string {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar}
		return func(path string) string {
			resp, err := client.Get(srv.URL + path)
			if err != nil {
				log.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return string(body)
		}
	}
	laptop, phone := browser(), browser()
	laptop("/login?device=laptop")
	phone("/login?device=phone")
	list, _ := store.ListSessions(context.Background(), "user-42") // a background job's view
	fmt.Println("sessions:", len(list))

	laptop("/logout-others")
	fmt.Printf("laptop sees: %q\n", laptop("/sessions"))
	fmt.Printf("phone sees: %q\n", phone("/sessions"))
	// Output:
	// sessions: 2
	// laptop sees: "laptop current=true; "
	// phone sees: ""
}
