package errorsjson

import (
	"net/http"
	"path"
	"strings"

	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
)

// CanonicalPath is middleware that answers 404 {"error":"Not found"} for a
// request whose path is not in the canonical form: a "." or ".." segment or
// an empty one (/api/./quote, /x/../api/quote, //api/quote). http.ServeMux
// answers such a path with a redirect to its cleaned form that carries no
// body (307, even for a POST), which a JSON caller cannot read; a gateway
// routes paths as they are written, so an unclean one is a route it does not
// serve. CONNECT requests, which ServeMux does not clean, pass, as does every
// canonical path.
func CanonicalPath(next http.Handler) http.Handler {
	nilhandler.Refuse("errorsjson: CanonicalPath", next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect && !canonical(r.URL.EscapedPath()) {
			Write(w, r, http.StatusNotFound, MsgNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// canonical reports whether ServeMux would route p without redirecting it:
// whether p equals its path.Clean form, a trailing slash kept, as ServeMux's
// own cleanPath keeps it.
func canonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// MaxHeaderBytes returns middleware that answers 431 {"error":"Request
// header fields too large"} for a request whose request line and header
// fields, counted as written on the wire ("Name: value\r\n" a field, Host
// included), exceed n bytes; n of 0 or less means no limit.
//
// http.Server has its own limit, MaxHeaderBytes, and answers past it before
// any handler runs, in text/plain. Set the server's limit above n (net/http's
// default, 1 MiB, is) so that a request between the two gets this JSON answer,
// with its X-Request-ID; only one past the server's own limit gets net/http's.
func MaxHeaderBytes(n int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("errorsjson: MaxHeaderBytes", next)
		if n <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if headerBytes(r, n) > n {
				Write(w, r, http.StatusRequestHeaderFieldsTooLarge, MsgHeaderTooLarge)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// headerBytes returns the size of r's request line and header fields as
// written on the wire, or a number above limit as soon as the count passes
// it.
func headerBytes(r *http.Request, limit int) int {
	// "METHOD URI PROTO\r\n", "Host: host\r\n" and the blank line's "\r\n".
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2 + len("Host: \r\n") + len(r.Host) + 2
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(": \r\n") + len(v)
		}
		if n > limit {
			return n
		}
	}
	return n
}
