package auth

import (
	"crypto/sha256"
	"hash/crc32"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// checkKeyReference is Format{}.Check derived again from the format's
// description (prefix, 32 base62 characters, 6 base62 digits of the CRC-32 of
// what precedes them) with the standard library's CRC-32.
func checkKeyReference(key string) error {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if len(key) != len("ila_")+32+6 || !strings.HasPrefix(key, "ila_") {
		return errMalformedKey
	}
	var sum uint64
	for i := len("ila_"); i < len(key); i++ {
		d := strings.IndexByte(alphabet, key[i])
		if d < 0 {
			return errMalformedKey
		}
		if i >= len("ila_")+32 {
			sum = sum*62 + uint64(d)
		}
	}
	if sum != uint64(crc32.ChecksumIEEE([]byte(key[:len(key)-6]))) {
		return errKeyChecksum
	}
	return nil
}

// withReferenceChecksum returns "ila_" and a 32-character base62 body made of
// seed, followed by the 6 base62 digits of its CRC-32 plus offset (0 for the
// key's own checksum).
func withReferenceChecksum(seed string, offset uint64) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if seed == "" {
		seed = "0"
	}
	b := []byte("ila_")
	for i := range 32 {
		b = append(b, alphabet[int(seed[i%len(seed)])%62])
	}
	sum := uint64(crc32.ChecksumIEEE(b)) + offset
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = alphabet[sum%62]
		sum /= 62
	}
	return string(append(b, digits[:]...))
}

// FuzzCheckKey: Check answers what the format's description answers, for any
// string; a key built from the description passes, a minted key passes, and
// changing any one character of either makes it fail.
func FuzzCheckKey(f *testing.F) {
	for range 3 {
		k, _ := NewKey()
		f.Add(k, uint8(5), uint8('Q'))
	}
	f.Add("", uint8(0), uint8(0))
	f.Add("ila_", uint8(3), uint8('_'))
	f.Add("ila_"+strings.Repeat("z", 38), uint8(41), uint8('0'))
	f.Add(withReferenceChecksum("x", 0), uint8(37), uint8('a'))
	f.Add(withReferenceChecksum("x", 0), uint8(41), uint8('_'))
	f.Add(withReferenceChecksum("x", 1<<32), uint8(0), uint8('i'))
	f.Fuzz(func(t *testing.T, key string, pos, c uint8) {
		var format Format
		if got, want := format.Check(key), checkKeyReference(key); got != want {
			t.Fatalf("Check(%q) = %v, the format's description says %v", key, got, want)
		}

		minted, record := format.NewKey()
		built := withReferenceChecksum(key, 0)
		// The same CRC-32 modulo 2^32 in 6 digits is still not the checksum.
		if aliased := withReferenceChecksum(key, 1<<32); format.Check(aliased) != errKeyChecksum {
			t.Fatalf("%q (checksum digits plus 2^32) passes Check", aliased)
		}
		for _, valid := range []string{minted, built} {
			if err := format.Check(valid); err != nil || len(valid) != format.keyLen() {
				t.Fatalf("valid key %q refused (%v) or of length %d, not %d", valid, err, len(valid), format.keyLen())
			}
			i := int(pos) % len(valid)
			if c == valid[i] {
				continue
			}
			changed := valid[:i] + string([]byte{c}) + valid[i+1:]
			if err := format.Check(changed); err == nil || err != checkKeyReference(changed) {
				t.Fatalf("%q (position %d of %q changed): Check = %v, want %v", changed, i, valid, err, checkKeyReference(changed))
			}
		}
		if record.Hash != sha256.Sum256([]byte(minted)) {
			t.Fatalf("minted record's hash is not the SHA-256 of its key")
		}
	})
}

func FuzzExtractKey(f *testing.F) {
	f.Add("Bearer ila_abc", "ila_abc", false)
	f.Add("bearer\tila_abc ", "", true)
	f.Add("Basic dXNlcjpwYXNz", "ila_x", false)
	f.Add("", "", false)
	f.Add("Bearer", " ", true)
	f.Fuzz(func(t *testing.T, authz, apiKey string, repeat bool) {
		h := http.Header{}
		if authz != "" {
			h["Authorization"] = []string{authz}
		}
		if apiKey != "" {
			h["X-Api-Key"] = []string{apiKey}
			if repeat {
				h["X-Api-Key"] = append(h["X-Api-Key"], apiKey)
			}
		}
		key, err := extractKey(h)
		if err != nil && key != "" {
			t.Fatalf("extractKey = %q with error %v", key, err)
		}
		if key != strings.Trim(key, " \t") {
			t.Fatalf("key %q is not trimmed", key)
		}
		if key != "" && !strings.Contains(authz, key) && !strings.Contains(apiKey, key) {
			t.Fatalf("key %q comes from neither header", key)
		}
	})
}

// FuzzQueryCost: the cost of a query is the highest cost among the values of
// "format" that net/url finds in it (the product's cost when there is none),
// whatever the caller writes: escapes, repeats, semicolons, broken escapes.
func FuzzQueryCost(f *testing.F) {
	for _, s := range []string{"", "format=pdf", "format=json&format=pdf", "form%61t=pdf", "format=p%64f",
		"format=pdf;x=1", "format=json&format=pdf;x", "format=%zz&format=both", "a=1&format", "format=pdf&format=", "format+=pdf", "format=pd+f"} {
		f.Add(s)
	}
	p := &Product{Cost: 5, FormatCosts: map[string]int{"json": 1, "pdf": 10, "both": 11, "": 7, "pd f": 3}}
	f.Fuzz(func(t *testing.T, raw string) {
		vals, _ := url.ParseQuery(raw)
		want := p.costOf("")
		if vs := vals["format"]; len(vs) > 0 {
			want = 0
			for _, v := range vs {
				want = max(want, p.costOf(v))
			}
		}
		if got := p.QueryCost(raw); got != want {
			t.Errorf("QueryCost(%q) = %d, want %d (net/url reads format=%q)", raw, got, want, vals["format"])
		}
	})
}
