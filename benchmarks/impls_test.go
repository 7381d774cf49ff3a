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

// TestKeyChecks checks that every side of BenchmarkKeyCheck checks keys: each
// lets a request through to the next handler with a key of its store and
// answers 401 to one with a key it does not hold, or with none, so that the
// benchmark measures real checks.
func TestKeyChecks(t *testing.T) {
	held := requests(1)[0]
	unknown, _ := auth.NewKey()
	for _, kc := range keyChecks {
		t.Run(kc.name, func(t *testing.T) {
			var passed bool
			h := kc.new(auth.NewMemoryStore(apiKeys().records[:1]...))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				passed = true
			}))
			for _, c := range []struct {
				name          string
				authorization string
				want          int
				wantPassed    bool
			}{
				{"held", held.Header.Get("Authorization"), 0, true},
				{"unknown", "Bearer " + unknown, http.StatusUnauthorized, false},
				{"none", "", http.StatusUnauthorized, false},
			} {
				r := held.Clone(t.Context())
				r.Header.Del("Authorization")
				if c.authorization != "" {
					r.Header.Set("Authorization", c.authorization)
				}
				w := &nopWriter{h: make(http.Header)}
				passed = false
				h.ServeHTTP(w, r)
				if w.status != c.want || passed != c.wantPassed {
					t.Errorf("%s key: status %d, next handler run %v; want %d, %v", c.name, w.status, passed, c.want, c.wantPassed)
				}
			}
		})
	}
}
