package httpsession

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter commits the session just before the first byte of the
// response leaves: on the first final WriteHeader, Write, Flush, ReadFrom or
// Hijack. If the commit fails, the error handler answers instead and the
// handler's later output is refused, so an error is never glued onto a
// half-written page.
type responseWriter struct {
	http.ResponseWriter
	st  *requestState
	err error // commit failed: the handler's output is refused
}

// commit runs the session commit once and reports whether the handler's
// output may go out.
func (w *responseWriter) commit() bool {
	if first, err := w.st.commit(); first && err != nil {
		w.err = err
		w.st.m.handleError(w.ResponseWriter, w.st.r, err)
	}
	return w.err == nil
}

// WriteHeader commits before a final status. Informational statuses such as
// 103 Early Hints pass through: the session cookie belongs on the final
// response.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if w.err == nil {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Write commits, then writes.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.commit() {
		return 0, w.err
	}
	return w.ResponseWriter.Write(p)
}

// Flush commits, then flushes if the underlying writer can.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls: it commits, then
// flushes, reporting http.ErrNotSupported if the underlying writer cannot.
func (w *responseWriter) FlushError() error {
	if !w.commit() {
		return w.err
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ReadFrom commits, then hands src to the underlying writer's ReadFrom so
// net/http keeps its sendfile path.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, w.err
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides ReadFrom so io.Copy does not loop back into it.
type writerOnly struct{ io.Writer }

// Hijack commits what can still be committed, the store write, and then
// hijacks. A failed commit fails the Hijack with its error, and the error
// handler answers on the still-unhijacked connection. A cookie that was due
// cannot be sent on a hijacked connection: that is logged as ErrHijacked,
// and a server-side record created for it (a new session, or a new
// identity) is deleted again, since no browser can ever present its ID.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	fresh := !w.st.committed.Load() // otherwise the cookie already went out with the headers
	if !w.commit() {
		return nil, nil, w.err
	}
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && fresh && w.st.loaded != nil && w.st.cookieSet {
		w.st.m.log().Error("httpsession: session cookie not sent", "err", ErrHijacked, "path", w.st.r.URL.Path)
		if w.st.created != "" && w.st.m.serverSide {
			if derr := w.st.m.store.Delete(w.st, w.st.created); derr != nil {
				w.st.m.log().Error("httpsession: orphan session record not deleted", "err", derr, "path", w.st.r.URL.Path)
			}
		}
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer for the
// calls the session does not need to see (deadlines, full duplex).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
