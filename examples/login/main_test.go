package main

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/go-httpsession/httpsession"
	"github.com/go-httpsession/httpsession/examples/internal/loginapptest"
)

func TestLoginNaClStore(t *testing.T) {
	t.Setenv("HTTPSESSION_KEY", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	store, err := newStore("nacl")
	if err != nil {
		t.Fatal(err)
	}
	h, err := newServer(store)
	if err != nil {
		t.Fatal(err)
	}
	loginapptest.Run(t, h, false)
}

func TestLoginMemoryStore(t *testing.T) {
	store, err := newStore("memory")
	if err != nil {
		t.Fatal(err)
	}
	h, err := newServer(store)
	if err != nil {
		t.Fatal(err)
	}
	loginapptest.Run(t, h, true)
}

func TestNewStoreErrors(t *testing.T) {
	if _, err := newStore("redis"); err == nil || !strings.Contains(err.Error(), "nacl or memory") {
		t.Fatalf("unknown store: err %v", err)
	}
	t.Setenv("HTTPSESSION_KEY", "not base64!")
	if _, err := newStore("nacl"); err == nil || !strings.Contains(err.Error(), "HTTPSESSION_KEY") {
		t.Fatalf("bad base64 key: err %v", err)
	}
	t.Setenv("HTTPSESSION_KEY", base64.StdEncoding.EncodeToString(make([]byte, 16)))
	if _, err := newStore("nacl"); !errors.Is(err, httpsession.ErrInvalidKey) {
		t.Fatalf("16-byte key: err %v, want ErrInvalidKey", err)
	}
	t.Setenv("HTTPSESSION_KEY", "")
	if _, err := newStore("nacl"); err != nil {
		t.Fatalf("random key: %v", err)
	}
}
