// Package nilhandler holds the check every middleware of the module makes of
// the handler it is given to wrap.
package nilhandler

import (
	"errors"
	"net/http"
)

// Refuse panics if next is nil, with an error naming the middleware (as
// "auth: Middleware"): a nil handler is found when the stack is built, as
// http.Handle finds it, not by the first request.
func Refuse(middleware string, next http.Handler) {
	if next == nil {
		panic(errors.New(middleware + " of a nil handler"))
	}
}
