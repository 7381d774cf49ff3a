package auth

import "encoding/binary"

// hashIndex is one version of a [MemoryStore]'s keys, read by Lookup and
// never written once built: an open-addressed table of the records, each at
// the slot its hash's first eight bytes pick, or the first free slot after.
//
// It stands in for a map[[32]byte]*Key because a hash is SHA-256 output,
// already uniformly random, so it needs no hashing of its own; a slot is 16
// bytes (those eight bytes and the record) and at most half the slots are
// taken, so a lookup reads one slot, most often, before the record. A map
// reads its group's control word, then the slot holding the 32-byte key,
// each a cache line of its own once the store outgrows the cache. What that
// buys is in docs/performance.md.
//
// Nobody who sends a key chooses where its hash falls, short of searching
// SHA-256 for it, and the runs of taken slots a lookup walks are those of the
// store's own keys, which its administrator mints.
type hashIndex struct {
	slots []hashSlot // a power of two of them, at least twice the records
	n     int        // records
}

type hashSlot struct {
	tag uint64 // the hash's first eight bytes
	k   *Key   // nil for a free slot
}

// newHashIndex returns an index of m's records.
func newHashIndex(m map[[32]byte]*Key) *hashIndex {
	size := 8
	for size < 2*len(m) {
		size *= 2
	}
	x := &hashIndex{slots: make([]hashSlot, size), n: len(m)}
	mask := uint64(size - 1)
	for h, k := range m {
		tag := hashTag(&h)
		i := tag & mask
		for x.slots[i].k != nil {
			i = (i + 1) & mask
		}
		x.slots[i] = hashSlot{tag: tag, k: k}
	}
	return x
}

// get returns the record whose Hash is h, or nil. A nil index is empty.
func (x *hashIndex) get(h *[32]byte) *Key {
	if x == nil {
		return nil
	}
	tag, mask := hashTag(h), uint64(len(x.slots)-1)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.k == nil {
			return nil // a free slot ends the run; there always is one
		}
		if s.tag == tag && s.k.Hash == *h {
			return s.k
		}
	}
}

// toMap returns a new map of x's records by Hash, to be changed and indexed
// again. A nil index gives an empty map.
func (x *hashIndex) toMap() map[[32]byte]*Key {
	if x == nil {
		return make(map[[32]byte]*Key)
	}
	m := make(map[[32]byte]*Key, x.n)
	for _, s := range x.slots {
		if s.k != nil {
			m[s.k.Hash] = s.k
		}
	}
	return m
}

func hashTag(h *[32]byte) uint64 { return binary.LittleEndian.Uint64(h[:8]) }
