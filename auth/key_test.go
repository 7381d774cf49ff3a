package auth

import (
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func TestNewKeyPassesCheck(t *testing.T) {
	for _, f := range []Format{{}, {Prefix: "ila_"}, {Prefix: "test_"}} {
		for range 100 {
			plain, k := f.NewKey()
			if err := f.Check(plain); err != nil {
				t.Fatalf("Check(%q) = %v", plain, err)
			}
			if !strings.HasPrefix(plain, f.prefix()) || len(plain) != f.keyLen() {
				t.Fatalf("key %q: want prefix %q and length %d", plain, f.prefix(), f.keyLen())
			}
			if k.Hash != HashKey(plain) {
				t.Fatalf("Hash is not HashKey(plaintext)")
			}
			if !strings.HasPrefix(k.ID, "key_") || len(k.ID) != 20 || strings.Contains(plain, k.ID[4:]) {
				t.Fatalf("ID %q: want key_ and 16 hex digits unrelated to the key", k.ID)
			}
		}
	}
	a, _ := NewKey()
	b, _ := NewKey()
	if a == b {
		t.Fatal("two minted keys are equal")
	}
}

func TestCheck(t *testing.T) {
	valid, _ := NewKey()
	tests := []struct {
		name string
		key  string
		want error
	}{
		{"valid", valid, nil},
		{"empty", "", errMalformedKey},
		{"prefix only", "ila_", errMalformedKey},
		{"wrong prefix", "ilb_" + valid[4:], errMalformedKey},
		{"other format's prefix", "sk_" + valid[3:], errMalformedKey},
		{"too short", valid[:len(valid)-1], errMalformedKey},
		{"too long", valid + "A", errMalformedKey},
		{"character outside base62", valid[:10] + "-" + valid[11:], errMalformedKey},
		{"non-ASCII", valid[:10] + "é" + valid[12:], errMalformedKey},
		{"invented body", "ila_" + strings.Repeat("A", 38), errKeyChecksum},
		{"swapped characters", swapFirstDifferent(valid), errKeyChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Format{}).Check(tt.key); !errors.Is(got, tt.want) {
				t.Errorf("Check(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

// swapFirstDifferent swaps the first two adjacent different body characters.
func swapFirstDifferent(k string) string {
	b := []byte(k)
	for i := 4; i+1 < len(b)-checksumLen; i++ {
		if b[i] != b[i+1] {
			b[i], b[i+1] = b[i+1], b[i]
			break
		}
	}
	return string(b)
}

func TestCheckEverySingleCharacterChange(t *testing.T) {
	valid, _ := NewKey()
	for i := range len(valid) {
		for c := 0; c < 256; c++ {
			if byte(c) == valid[i] {
				continue
			}
			mutated := valid[:i] + string([]byte{byte(c)}) + valid[i+1:]
			if err := (Format{}).Check(mutated); err == nil {
				t.Fatalf("Check accepts %q (position %d changed)", mutated, i)
			}
		}
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	valid, _ := NewKey()
	bad := valid[:len(valid)-1] + "x"
	if bad == valid {
		bad = valid[:len(valid)-1] + "y"
	}
	allocs := testing.AllocsPerRun(100, func() {
		_ = Format{}.Check(valid)
		_ = Format{}.Check(bad)
		_ = HashKey(valid)
	})
	if allocs != 0 {
		t.Errorf("Check and HashKey allocate %v times, want 0", allocs)
	}
}

func TestHashHexRoundTrip(t *testing.T) {
	_, k := NewKey()
	h, err := ParseHash(k.HashHex())
	if err != nil || h != k.Hash {
		t.Fatalf("ParseHash(HashHex()) = %x, %v; want %x", h, err, k.Hash)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 66)} {
		if _, err := ParseHash(bad); !errors.Is(err, errMalformedHash) {
			t.Errorf("ParseHash(%q) error = %v, want errMalformedHash", bad, err)
		}
	}
}

func TestKeyActiveAndAllows(t *testing.T) {
	tests := []struct {
		name string
		key  Key
		want error
	}{
		{"plain", Key{}, nil},
		{"disabled", Key{Disabled: true}, ErrKeyDisabled},
		{"expires later", Key{ExpiresAt: t0.Add(time.Second)}, nil},
		{"expires now", Key{ExpiresAt: t0}, ErrKeyExpired},
		{"expired", Key{ExpiresAt: t0.Add(-time.Second)}, ErrKeyExpired},
		{"disabled and expired", Key{Disabled: true, ExpiresAt: t0.Add(-time.Second)}, ErrKeyDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.Err(t0); got != tt.want {
				t.Errorf("Err = %v, want %v", got, tt.want)
			}
		})
	}

	scoped := Key{Products: []string{"quote", "claims"}}
	all := Key{Products: []string{"*"}}
	none := Key{}
	for _, c := range []struct {
		k    Key
		slug string
		want bool
	}{
		{scoped, "quote", true}, {scoped, "claims", true}, {scoped, "other", false},
		{scoped, "Quote", false}, {all, "anything", true}, {none, "quote", false},
	} {
		if got := c.k.Allows(c.slug); got != c.want {
			t.Errorf("%v.Allows(%q) = %v, want %v", c.k.Products, c.slug, got, c.want)
		}
	}
}

func TestChecksumIsCRC32(t *testing.T) {
	for _, s := range []string{"", "a", "ila_0123456789abcdefABCDEFxyzXYZ012345"} {
		if got, want := checksum(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("checksum(%q) = %08x, want %08x", s, got, want)
		}
	}
}

func TestDocumentedKeyIsValid(t *testing.T) {
	// The key shown in Format's doc comment.
	if err := (Format{}).Check("ila_SD7Uo4RgAd1G32g0DOHw3FNYR5nAjGk73jmvzq"); err != nil {
		t.Error(err)
	}
}
