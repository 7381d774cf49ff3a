package ratelimit

import "math/bits"

// nameIndex is a shard's buckets by name, keys' and owners' together: an
// open-addressed table of 16-byte slots, each a name's hash and its bucket,
// at most half of them taken, probed in turn from the place the hash picks
// (linear probing, with deletion by shifting back, so no slot is ever a
// tombstone).
//
// It stands in for two map[string]*bucket because the hash is the one that
// picked the shard (MemoryStore.shardOf), computed once a Take, and a lookup
// most often reads one slot before the bucket it needs anyway; a map hashes
// the name again and reads its group's control word, then the slot holding
// the name, each a cache line of its own once the shard outgrows the cache.
// What that buys is in docs/performance.md.
//
// The hash is maphash's, under the store's random seed, so a caller who
// chooses names does not choose where they fall.
type nameIndex struct {
	slots []nameSlot // a power of two of them, at least twice n; nil when n is 0
	n     int
}

type nameSlot struct {
	hash uint64
	b    *bucket // nil for a free slot
}

// home is the place a hash picks among size slots (a power of two). The
// shard's names share the low bits that picked the shard: it takes higher
// ones.
func home(hash uint64, size int) int { return int(hash>>24) & (size - 1) }

// find returns the bucket of a key's or (with owner) an owner's name whose
// hash is hash, or nil.
func (x *nameIndex) find(hash uint64, name string, owner bool) *bucket {
	if x.n == 0 {
		return nil
	}
	mask := len(x.slots) - 1
	for i := home(hash, len(x.slots)); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.b == nil {
			return nil // a free slot ends the run; there always is one
		}
		if s.hash == hash && s.b.owner == owner && s.b.key == name {
			return s.b
		}
	}
}

// add puts b, whose name's hash is hash and which x does not hold, in x,
// first making the table twice as large if that would fill more than half.
func (x *nameIndex) add(hash uint64, b *bucket) {
	if 2*(x.n+1) > len(x.slots) {
		x.resize(max(8, 2*len(x.slots)))
	}
	x.put(hash, b)
	x.n++
}

// put puts b in the first free slot from hash's place.
func (x *nameIndex) put(hash uint64, b *bucket) {
	mask := len(x.slots) - 1
	i := home(hash, len(x.slots))
	for x.slots[i].b != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = nameSlot{hash: hash, b: b}
}

// remove takes b, whose name's hash is hash and which x holds, out of x,
// and moves back each later slot of its run that may go to the freed place,
// so that every bucket stays reachable from its place without a gap.
func (x *nameIndex) remove(hash uint64, b *bucket) {
	mask := len(x.slots) - 1
	free := home(hash, len(x.slots))
	for x.slots[free].b != b {
		free = (free + 1) & mask
	}
	for j := (free + 1) & mask; x.slots[j].b != nil; j = (j + 1) & mask {
		// The slot at j may move to free if its place is not in (free, j],
		// cyclically: probing from its place then passes free first.
		if p := home(x.slots[j].hash, len(x.slots)); (j-p)&mask >= (j-free)&mask {
			x.slots[free] = x.slots[j]
			free = j
		}
	}
	x.slots[free] = nameSlot{}
	x.n--
}

// resize moves x's buckets into a new table of size slots (a power of two
// at least twice x.n), or into none when size is 0 (x holds none).
func (x *nameIndex) resize(size int) {
	old := x.slots
	x.slots = nil
	if size > 0 {
		x.slots = make([]nameSlot, size)
	}
	for _, s := range old {
		if s.b != nil {
			x.put(s.hash, s.b)
		}
	}
}

// fit makes x's table the smallest that holds x.n at most half full (none
// when x.n is 0): for a shard that has shrunk, so that its memory goes back.
func (x *nameIndex) fit() {
	size := 0
	if x.n > 0 {
		size = max(8, halfFull(x.n))
	}
	if size != len(x.slots) {
		x.resize(size)
	}
}

// halfFull is the smallest power of two not below twice n (n > 0): the size
// of a table that n entries fill at most half.
func halfFull(n int) int { return 1 << bits.Len(uint(2*n-1)) }
