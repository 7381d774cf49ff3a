package benchmarks

import (
	"net/http"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
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

// TestKeyChecks checks that both sides of BenchmarkKeyCheck check keys: each
// lets a request through with a key of its store and answers 401 to one with
// a key it does not hold, or with none, so that the benchmark measures real
// checks.
func TestKeyChecks(t *testing.T) {
	held := requests(1)[0]
	unknown, _ := auth.NewKey()
	for _, kc := range keyChecks {
		t.Run(kc.name, func(t *testing.T) {
			h := kc.new(auth.NewMemoryStore(apiKeys().records[:1]...))(nop)
			for _, c := range []struct {
				name          string
				authorization string
				want          int
			}{
				{"held", held.Header.Get("Authorization"), 0},
				{"unknown", "Bearer " + unknown, http.StatusUnauthorized},
				{"none", "", http.StatusUnauthorized},
			} {
				r := held.Clone(t.Context())
				r.Header.Del("Authorization")
				if c.authorization != "" {
					r.Header.Set("Authorization", c.authorization)
				}
				w := &nopWriter{h: make(http.Header)}
				h.ServeHTTP(w, r)
				if w.status != c.want {
					t.Errorf("%s key: status %d, want %d", c.name, w.status, c.want)
				}
			}
		})
	}
}
