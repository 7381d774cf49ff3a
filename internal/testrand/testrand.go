// Package testrand is the seeded generator of the randomized tests, shared by
// ratelimit's and redisstore's: a test that fails logs its seed, and the
// seed replays it.
//
//	r := testrand.New(t) // -seed=N or GATEHOUSE_SEED=N replays; else seeded by the time
//	l := ratelimit.Limits{PerMinute: testrand.Limit(r, ratelimit.MaxLimit), PerDay: testrand.Limit(r, ratelimit.MaxLimit)}
//
// Importing it gives the test binary the flag -seed.
package testrand

import (
	"flag"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tests (0: GATEHOUSE_SEED, else the time)")

// New returns a generator for a randomized test, seeded by -seed, else by
// GATEHOUSE_SEED, else by the time, and logs its seed if t fails: replay with
// -seed=N or GATEHOUSE_SEED=N.
func New(t testing.TB) *rand.Rand {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed, _ = strconv.ParseUint(os.Getenv("GATEHOUSE_SEED"), 10, 64)
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: replay with -seed=%d or GATEHOUSE_SEED=%d", seed, seed, seed)
		}
	})
	return Seeded(seed)
}

// Seeded returns the generator that New returns for seed: a test pins a seed
// that once found a bug with it.
func Seeded(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Limit returns a limit from every scale, from 1 to most: tiny, an API's, up
// to a million, within 1,000 of most, and any. most is at least 1,000.
func Limit(r *rand.Rand, most int) int {
	switch r.IntN(5) {
	case 0:
		return 1 + r.IntN(10)
	case 1:
		return 1 + r.IntN(2000)
	case 2:
		return 1 + r.IntN(1_000_000)
	case 3:
		return most - r.IntN(1000)
	default:
		return 1 + int(r.Int64N(int64(most)))
	}
}
