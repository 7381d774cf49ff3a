package benchmarks

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// keyChecks are the sides of BenchmarkKeyCheck, each built over one
// auth.MemoryStore of every key: the key middleware, and two floors of any
// check of keys stored as SHA-256 hashes.
var keyChecks = []struct {
	name string
	new  func(keys *auth.MemoryStore) func(http.Handler) http.Handler
}{
	{"auth-middleware", func(keys *auth.MemoryStore) func(http.Handler) http.Handler {
		return auth.Middleware(auth.Config{Store: keys})
	}},
	{"floor", func(keys *auth.MemoryStore) func(http.Handler) http.Handler {
		return keyCheckFloor(keys, false)
	}},
	{"floor-handing-on", func(keys *auth.MemoryStore) func(http.Handler) http.Handler {
		return keyCheckFloor(keys, true)
	}},
}

// floorKey is the context key of the record keyCheckFloor hands on.
type floorKey struct{}

// keyCheckFloor is the least a check of API keys does before the next handler:
// it reads the Authorization header's value, hashes the key with SHA-256 and
// looks the hash up in keys; with handOn, it also hands the record on to the
// handlers after it in the one way net/http has, a copy of the request with a
// context holding it (r.WithContext(context.WithValue(…))). It leaves out what
// auth.Middleware does beyond that: the second header (X-API-Key) and the
// rules between the two, the key's format and checksum, the record's Disabled
// and ExpiresAt, the throttle and the report of each outcome. A request whose
// key keys does not hold gets 401.
func keyCheckFloor(keys *auth.MemoryStore, handOn bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if v := r.Header["Authorization"]; len(v) == 1 {
				if plaintext, ok := strings.CutPrefix(v[0], "Bearer "); ok {
					if k, err := keys.Lookup(r.Context(), auth.HashKey(plaintext)); err == nil && k != nil {
						if handOn {
							r = r.WithContext(context.WithValue(r.Context(), floorKey{}, k))
						}
						next.ServeHTTP(w, r)
						return
					}
				}
			}
			w.WriteHeader(http.StatusUnauthorized)
		})
	}
}

// BenchmarkKeyCheck measures the key check of gatehouse-fullstack without the
// limiter behind it, in BenchmarkRateLimit's scenarios and over its prebuilt
// requests, each carrying a key of the store: auth.Middleware, and the floors
// of any key check (keyCheckFloor), without and with handing the record on.
// With 100,000 keys, each request's header map, its value and the key's
// record are out of the CPU's caches when it comes round again, as each
// peer's RemoteAddr and bucket are; the floors are what reading them, SHA-256
// and the request's copy cost on this machine.
func BenchmarkKeyCheck(b *testing.B) {
	keys := auth.NewMemoryStore(apiKeys().records...)
	reqs := scenarioRequests()
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			for _, kc := range keyChecks {
				b.Run(kc.name, func(b *testing.B) {
					run(b, kc.new(keys)(nop), reqs[sc.keys], sc.parallel)
				})
			}
		})
	}
}
