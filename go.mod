module github.com/go-httpsession/httpsession

go 1.26.0

require (
	github.com/gorilla/securecookie v1.1.2 // indirect
	golang.org/x/crypto v0.58.0 // indirect
)
