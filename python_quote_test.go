package httpsession

import (
	"context"
	"testing"
	"time"
)

// The expected strings are what Python's http.cookies._quote produced
// (aiohttp_session-wire.md §4.2 and §6.2).
func TestPythonQuote(t *testing.T) {
	for in, want := range map[string]string{
		`{"created": 1700000000, "session": {"a": 1}}`: `"{\"created\": 1700000000\054 \"session\": {\"a\": 1}}"`,
		`{}`:       `"{}"`,
		"abc+-._":  "abc+-._",
		"":         `""`,
		"a;b,c\\d": `"a\073b\054c\\d"`,
		"x=y/z":    `"x=y/z"`,
		"\x7f\x01": `"\177\001"`,
	} {
		if got := pythonQuote([]byte(in)); got != want {
			t.Errorf("pythonQuote(%q) = %s, want %s", in, got, want)
		}
		inner := want
		if len(inner) >= 2 && inner[0] == '"' {
			inner = inner[1 : len(inner)-1]
		}
		if got, ok := pythonUnquote(inner); !ok || string(got) != in {
			t.Errorf("pythonUnquote(%s) = %q, %v; want %q", inner, got, ok, in)
		}
	}
	if got, ok := pythonUnquote(`\351t\u00e9`); !ok || string(got) != "étu00e9" {
		t.Errorf("octal Latin-1 escape: %q", got)
	}
	if _, ok := pythonUnquote(`trailing\`); ok {
		t.Error("a lone trailing backslash was accepted")
	}
}

func TestInsecureCookieStoreIsAiohttpSimpleFormat(t *testing.T) {
	store := NewInsecureCookieStore()
	tok, err := store.Save(context.Background(), "", []byte(`{"created":1700000000,"session":{"u":"é😀","c":"a,b;c"}}`), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := `"{\"created\":1700000000\054\"session\":{\"u\":\"\\u00e9\\ud83d\\ude00\"\054\"c\":\"a\054b\073c\"}}"`
	if tok != want {
		t.Fatalf("token\n%s\nwant\n%s", tok, want)
	}
	if err := checkCookieValue(tok); err != nil {
		t.Fatal(err)
	}
	var rec Record
	data, err := store.Load(context.Background(), tok[1:len(tok)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	var u string
	if err := (JSONCodec{}).DecodeValue(rec.Values["u"], &u); err != nil || u != "é😀" {
		t.Fatalf("u = %q, %v", u, err)
	}
}
