// Package adapters puts httpsession's middleware into the two popular
// frameworks whose middleware is not func(http.Handler) http.Handler:
// echo, which converts it with echo.WrapMiddleware, and gin, which needs
// the small adapter below. The README's snippets are copied from the
// //readme: regions of this file, and a test keeps them identical.
//
// This directory is a Go module of its own, so that echo and gin stay out
// of the library's go.mod.
package adapters

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-httpsession/httpsession"
	"github.com/labstack/echo/v4"
)

//readme:echo

// newEcho returns an echo server counting visits in the session.
// sessions is the middleware httpsession.Middleware returned.
func newEcho(sessions func(http.Handler) http.Handler) *echo.Echo {
	e := echo.New()
	e.Use(echo.WrapMiddleware(sessions))
	e.GET("/", func(c echo.Context) error {
		s, err := httpsession.Get(c.Request())
		if err != nil {
			return nil // the session middleware answers (503 when the store is down)
		}
		n, _ := httpsession.GetAs[int](s, "visits")
		if err := s.Set("visits", n+1); err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprintf("visit %d\n", n+1))
	})
	return e
}

//readme:end

//readme:gin

// newGin returns a gin engine counting visits in the session.
// sessions is the middleware httpsession.Middleware returned.
func newGin(sessions func(http.Handler) http.Handler) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery(), ginMiddleware(sessions))
	r.GET("/", func(c *gin.Context) {
		s, err := httpsession.Get(c.Request)
		if err != nil {
			c.Abort() // the session middleware answers (503 when the store is down)
			return
		}
		n, _ := httpsession.GetAs[int](s, "visits")
		if err := s.Set("visits", n+1); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.String(http.StatusOK, "visit %d\n", n+1)
	})
	return r
}

// ginMiddleware adapts net/http middleware to gin. The rest of gin's chain
// runs with the middleware's request, which carries the session, and
// writes through the middleware's ResponseWriter, which saves the session
// just before the first byte goes out.
func ginMiddleware(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		called := false
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			req, gw := c.Request, c.Writer
			defer func() { c.Request, c.Writer = req, gw }() // also on panic
			c.Request, c.Writer = r, ginWriter{ResponseWriter: gw, w: w}
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !called {
			c.Abort() // the middleware answered by itself
		}
	}
}

// ginWriter sends gin's output through w; gin's own writer underneath
// still records the status and size.
type ginWriter struct {
	gin.ResponseWriter
	w http.ResponseWriter
}

func (g ginWriter) Header() http.Header               { return g.w.Header() }
func (g ginWriter) WriteHeader(code int)              { g.w.WriteHeader(code) }
func (g ginWriter) Write(b []byte) (int, error)       { return g.w.Write(b) }
func (g ginWriter) WriteString(s string) (int, error) { return io.WriteString(g.w, s) }
func (g ginWriter) Flush()                            { _ = http.NewResponseController(g.w).Flush() }
func (g ginWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(g.w).Hijack()
}
func (g ginWriter) WriteHeaderNow() {
	if !g.Written() {
		g.w.WriteHeader(g.Status())
	}
	g.ResponseWriter.WriteHeaderNow()
}

//readme:end
