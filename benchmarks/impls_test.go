package benchmarks

import (
	"net/http"
	"testing"
)

// TestImplsLimit checks that every implementation is wired as the benchmarks
// assume: it passes requests under its limit and refuses the one over it, so
// that the benchmarks measure real rate limiting.
func TestImplsLimit(t *testing.T) {
	rs := requests(2)
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			mw, closeFn := im.new(t, 3)
			defer closeFn()
			h := mw(nop)
			for _, r := range rs {
				for i, want := range []int{0, 0, 0, http.StatusTooManyRequests} {
					w := &nopWriter{h: make(http.Header)}
					h.ServeHTTP(w, r)
					if w.status != want {
						t.Errorf("%s request %d: status %d, want %d", r.RemoteAddr, i+1, w.status, want)
					}
				}
			}
		})
	}
}
