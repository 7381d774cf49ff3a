// This file holds what a key is: the Key record, the public Format of
// plaintext keys (prefix, base62 body, CRC-32 checksum), minting (NewKey) and
// the SHA-256 hash that stores index keys by.

package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unsafe"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// defaultPrefix is the prefix of a key when [Format.Prefix] is empty.
const defaultPrefix = "ila_"

const (
	// bodyLen is the number of base62 characters of a key's random body:
	// 32 × log2(62) ≈ 190 bits of entropy.
	bodyLen = 32
	// checksumLen is the number of base62 characters of a key's checksum,
	// enough for any 32-bit value (62^6 > 2^32).
	checksumLen = 6
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Errors of key records ([Key.Err]), the format ([Format.Check]) and hashes
// ([ParseHash]). Only the first two are exported: callers answer every failed
// check the same way.
var (
	// errMalformedKey reports a key without the prefix, of the wrong length or
	// with a character outside the base62 alphabet.
	errMalformedKey = errors.New("auth: malformed API key")
	// errKeyChecksum reports a well-formed key whose checksum does not match its
	// body: a mistyped or invented key.
	errKeyChecksum = errors.New("auth: API key checksum mismatch")
	// ErrKeyDisabled reports a key an administrator disabled.
	ErrKeyDisabled = errors.New("auth: API key disabled")
	// ErrKeyExpired reports a key past its ExpiresAt.
	ErrKeyExpired = errors.New("auth: API key expired")
	// errMalformedHash reports a hex hash that is not 64 hex digits.
	errMalformedHash = errors.New("auth: malformed key hash")
)

// Key is the stored record of an API key. It never holds the key itself, only
// its SHA-256 hash, so a leaked store does not leak usable keys.
//
// A Key returned by a [Store] is shared: treat it, and its Products slice, as
// read-only.
type Key struct {
	// ID is a short, non-secret identifier, safe to log ("key_…").
	ID string
	// Hash is the SHA-256 of the plaintext key (see [HashKey]).
	Hash [32]byte
	// Name is a human-readable label for administrators.
	Name string
	// Products lists the product slugs the key may call; an entry "*" means
	// every product.
	Products []string
	// PerMinute and PerDay are the key's rate limits; 0 means the limiter's
	// default.
	PerMinute, PerDay int
	// Disabled refuses the key.
	Disabled bool
	// ExpiresAt is the instant from which the key is refused; zero means never.
	ExpiresAt time.Time
	// Allowance names the rate-limit allowance the key spends; empty means the
	// key's own ID. Keys with the same Allowance share one allowance, as a
	// rotated key and its successor do (see [Key.LimitID]).
	Allowance string
	// Owner names the customer the key belongs to; empty means none. Keys
	// of one owner may share an allowance of the owner's, spent by each of
	// them on top of its own: the gateway's configuration sets it (see the
	// root package's Config.Owners); an owner without one limits nothing.
	Owner string
	// Windows are limits of the key's own beyond PerMinute and PerDay, such
	// as 1,000 requests an hour or 100,000 in 30 days; a request spends from
	// every one of them. Nil means none. They are the rate limiter's own type,
	// [ratelimit.Rate]: the limiter is what gives a window its meaning (how it
	// refills, which periods it accepts, its name in the RateLimit headers),
	// so a key carries one type that every store and the gateway hand on as
	// it is, with no conversion between two shapes of the same thing.
	Windows []ratelimit.Rate
}

// LimitID returns the identity the key's rate limits are kept under: its
// Allowance, or its ID when Allowance is empty.
func (k *Key) LimitID() string {
	if k.Allowance != "" {
		return k.Allowance
	}
	return k.ID
}

// Allows reports whether k is scoped to the product slug: k.Products contains
// slug or "*".
func (k *Key) Allows(slug string) bool {
	for _, p := range k.Products {
		if p == slug || p == "*" {
			return true
		}
	}
	return false
}

// Err returns nil if k may be used at now, [ErrKeyDisabled] if it is disabled
// and [ErrKeyExpired] if now is at or after its ExpiresAt. It exists for logs;
// callers answer both errors the same way.
func (k *Key) Err(now time.Time) error {
	switch {
	case k.Disabled:
		return ErrKeyDisabled
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return ErrKeyExpired
	}
	return nil
}

// HashHex returns k.Hash as 64 lowercase hex digits, the form config files use.
func (k *Key) HashHex() string {
	return hex.EncodeToString(k.Hash[:])
}

// HashKey returns the SHA-256 hash of a plaintext key, the value stores index
// keys by.
func HashKey(plaintext string) [32]byte {
	// A key that passed Format.Check fits the buffer, so hashing it does not
	// allocate; a longer string still hashes correctly.
	var buf [64]byte
	return sha256.Sum256(append(buf[:0], plaintext...))
}

// ParseHash parses the 64 hex digits of a key hash (as written by
// [Key.HashHex]). It returns an error for anything else.
func ParseHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: want 64 hex digits, got %d characters", errMalformedHash, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return [32]byte{}, fmt.Errorf("%w: %v", errMalformedHash, err)
	}
	return h, nil
}

// Format is the public structure of API keys: Prefix, then 32 base62
// characters of randomness (≈190 bits), then 6 base62 characters holding the
// CRC-32 (IEEE) of prefix and body, as GitHub's tokens do, so that a mistyped or
// invented key is refused before any store is asked:
//
//	ila_SD7Uo4RgAd1G32g0DOHw3FNYR5nAjGk73jmvzq
//	└──┘└──────────── body ────────────┘└crc─┘
//
// The zero value uses the prefix "ila_". A Format is a plain value, safe
// for simultaneous use.
type Format struct {
	// Prefix starts every key; empty means "ila_".
	Prefix string
}

func (f Format) prefix() string {
	if f.Prefix == "" {
		return defaultPrefix
	}
	return f.Prefix
}

// keyLen returns the length in bytes of every key of format f.
func (f Format) keyLen() int {
	return len(f.prefix()) + bodyLen + checksumLen
}

// Check reports whether key has the structure of f: it returns an error for
// a wrong prefix, length or alphabet, and for a checksum that does not match. It does not allocate. It looks only at the
// key's public structure; whether the key exists is a [Store]'s question.
func (f Format) Check(key string) error {
	p := f.prefix()
	if len(key) != f.keyLen() || key[:len(p)] != p {
		return errMalformedKey
	}
	// One table load a character and no branch: a key's characters are
	// random, so the branches of a range test would be mispredicted about
	// once a character (BenchmarkCheck).
	var outside int8
	for i := len(p); i < len(key); i++ {
		outside |= base62Digits[key[i]]
	}
	if outside < 0 {
		return errMalformedKey
	}
	payload := key[:len(key)-checksumLen]
	var got uint64
	for i := len(payload); i < len(key); i++ {
		got = got*62 + uint64(base62Digits[key[i]])
	}
	if got != uint64(checksum(payload)) {
		return errKeyChecksum
	}
	return nil
}

// NewKey mints a key of format f from crypto/rand. It returns the plaintext,
// to be shown once to its owner and never stored, and the record to store: ID
// ("key_" and 16 random hex digits) and Hash set, every other field zero.
func (f Format) NewKey() (plaintext string, k Key) {
	p := f.prefix()
	b := make([]byte, 0, f.keyLen())
	b = append(b, p...)
	var random [64]byte
	for len(b) < len(p)+bodyLen {
		rand.Read(random[:])
		for _, c := range random {
			// Rejection sampling keeps every character equally likely:
			// 248 = 4 × 62.
			if c < 248 && len(b) < len(p)+bodyLen {
				b = append(b, base62[c%62])
			}
		}
	}
	b = appendChecksum(b, checksum(string(b)))
	plaintext = string(b)

	var id [8]byte
	rand.Read(id[:])
	return plaintext, Key{ID: "key_" + hex.EncodeToString(id[:]), Hash: HashKey(plaintext)}
}

// NewKey mints a key of the default format; see [Format.NewKey].
func NewKey() (plaintext string, k Key) {
	return Format{}.NewKey()
}

// checksum returns the CRC-32 (IEEE) of payload. crc32 takes a []byte, and
// converting payload would cost Check an allocation a key, so it reads
// payload's own bytes (unsafe.Slice), which crc32 neither keeps nor writes:
// crc32's eight bytes at a step instead of a byte at a time over its table
// (what that buys is in docs/performance.md).
func checksum(payload string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(payload), len(payload)))
}

func appendChecksum(b []byte, sum uint32) []byte {
	var d [checksumLen]byte
	v := uint64(sum)
	for i := checksumLen - 1; i >= 0; i-- {
		d[i] = base62[v%62]
		v /= 62
	}
	return append(b, d[:]...)
}

// base62Digits maps a byte to its base62 value, and every byte outside the
// alphabet to -1: a table that is never written after it is built.
var base62Digits = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(base62) {
		t[base62[i]] = int8(i)
	}
	return t
}()
