package demo

import (
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// TestKeys: each demo key is a well-formed key whose record holds its hash
// and an id from its label, and Plaintext finds it by label.
func TestKeys(t *testing.T) {
	keys := Keys()
	if len(keys) != 5 {
		t.Fatalf("%d demo keys, want 5", len(keys))
	}
	for _, k := range keys {
		if err := (auth.Format{}).Check(k.Plaintext); err != nil {
			t.Errorf("%s: %v", k.Label, err)
		}
		if k.Hash != auth.HashKey(k.Plaintext) || k.ID != "key_demo_"+k.Label {
			t.Errorf("%s: record id %s, hash %s; want key_demo_%s and its plaintext's hash", k.Label, k.ID, k.HashHex(), k.Label)
		}
		if got := Plaintext(k.Label); got != k.Plaintext {
			t.Errorf("Plaintext(%q) = %q, want %q", k.Label, got, k.Plaintext)
		}
	}
	if got := Plaintext("nobody"); got != "" {
		t.Errorf("Plaintext(nobody) = %q, want \"\"", got)
	}
}
