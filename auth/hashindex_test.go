package auth

import (
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/testrand"
)

// TestHashIndex builds indexes of random hashes, a third of them sharing
// their first eight bytes (the slot they pick) with another, and checks that
// each record is found, that no other hash is, and that at least half the
// slots stay free.
func TestHashIndex(t *testing.T) {
	r := testrand.New(t)
	for _, n := range []int{0, 1, 2, 3, 4, 5, 8, 9, 100, 1000} {
		m := make(map[[32]byte]*Key, n)
		for len(m) < n {
			h := randomHash(r)
			if len(m) > 0 && r.IntN(3) == 0 {
				for other := range m { // a record's tag: same first slot, same tag
					copy(h[:8], other[:8])
					break
				}
			}
			m[h] = &Key{ID: "key", Hash: h}
		}
		x := newHashIndex(m)
		if size := len(x.slots); bits.OnesCount(uint(size)) != 1 || size < 2*n || size < 8 {
			t.Fatalf("n=%d: %d slots, want a power of two, at least 8 and 2n", n, size)
		}
		for h, k := range m {
			if got := x.get(&h); got != k {
				t.Fatalf("n=%d: get(%x) = %p, want %p", n, h[:8], got, k)
			}
			absent := h
			absent[31] ^= 1 // same tag, another hash
			if _, in := m[absent]; !in {
				if got := x.get(&absent); got != nil {
					t.Fatalf("n=%d: get of an absent hash with a present tag = %p, want nil", n, got)
				}
			}
		}
		for range 1000 {
			h := randomHash(r)
			if _, in := m[h]; !in && x.get(&h) != nil {
				t.Fatalf("n=%d: get of an absent hash found a record", n)
			}
		}
		back := x.toMap()
		if len(back) != n || x.n != n {
			t.Fatalf("n=%d: toMap has %d records, index counts %d", n, len(back), x.n)
		}
		for h, k := range m {
			if back[h] != k {
				t.Fatalf("n=%d: toMap lost %x", n, h[:8])
			}
		}
	}
}

func TestHashIndexNil(t *testing.T) {
	var x *hashIndex
	var h [32]byte
	if x.get(&h) != nil {
		t.Error("get of a nil index found a record")
	}
	if m := x.toMap(); m == nil || len(m) != 0 {
		t.Errorf("toMap of a nil index = %v, want an empty map", m)
	}
}

func randomHash(r *rand.Rand) (h [32]byte) {
	for i := 0; i < len(h); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			h[i+j] = byte(v >> (8 * j))
		}
	}
	return h
}
