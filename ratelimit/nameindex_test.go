package ratelimit

import (
	"strconv"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/testrand"
)

// TestNameIndexAgreesWithMap runs seeded random adds and removes on a
// nameIndex and on a map, with hashes drawn from a few values so that runs
// of taken slots are long, wrap around the table's end and share hashes
// between names (and between a key and an owner of one name), and checks
// after each that every name the map holds is found, to its bucket, that no
// other is, and that at most half the slots are taken. fit, now and then,
// must keep all of it.
func TestNameIndexAgreesWithMap(t *testing.T) {
	r := testrand.New(t)
	type name struct {
		s     string
		owner bool
	}
	for history := range 40 {
		var x nameIndex
		want := make(map[name]*bucket)
		hashOf := make(map[name]uint64)
		// Hashes whose place (hash>>24) is near a table's end, and others.
		hashes := []uint64{0, 1 << 24, 7 << 24, 6 << 24, 5<<24 | 3, 1<<40 - 1<<24, 3<<24 | 9}
		hash := func(n name) uint64 {
			h, ok := hashOf[n]
			if !ok {
				h = hashes[r.IntN(len(hashes))] + uint64(r.IntN(2))<<50
				hashOf[n] = h
			}
			return h
		}
		for op := range 400 {
			n := name{s: strconv.Itoa(r.IntN(60)), owner: r.IntN(4) == 0}
			if b, ok := want[n]; ok {
				x.remove(hash(n), b)
				delete(want, n)
			} else {
				b := &bucket{key: n.s, owner: n.owner}
				x.add(hash(n), b)
				want[n] = b
			}
			if r.IntN(50) == 0 {
				x.fit()
			}
			if x.n != len(want) || len(want) > 0 && 2*x.n > len(x.slots) {
				t.Fatalf("history %d, op %d: %d buckets in %d slots, want %d, at most half full", history, op, x.n, len(x.slots), len(want))
			}
			for i := range 60 {
				for _, owner := range []bool{false, true} {
					n := name{s: strconv.Itoa(i), owner: owner}
					if got := x.find(hash(n), n.s, n.owner); got != want[n] {
						t.Fatalf("history %d, op %d: find(%q, owner %v) = %p, want %p", history, op, n.s, owner, got, want[n])
					}
				}
			}
		}
		for n, b := range want {
			x.remove(hash(n), b)
		}
		x.fit()
		if x.n != 0 || x.slots != nil {
			t.Fatalf("history %d: emptied and fit, %d buckets in %d slots, want none", history, x.n, len(x.slots))
		}
	}
}
