package demo

import (
	"fmt"
	"io"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// Secret is the demo upstream's credential: [Upstream] is given it, and the
// gateway in front of it adds it to every forwarded call as
// "Authorization: Bearer demo-upstream-secret".
const Secret = "demo-upstream-secret"

// Key is one of the demo keys: its record, as a key store holds it (the
// hash of the key, never the key), with the plaintext and a label beside it.
type Key struct {
	auth.Key
	// Label names the key where it is printed and in [Plaintext]: "full",
	// "tiny", "scoped", "disabled" or "expired".
	Label string
	// Plaintext is the key a caller sends. A real deployment keeps it
	// nowhere; the demo prints it so that the README's walkthrough works as
	// written.
	Plaintext string
	// About says what the key may do, in a few words.
	About string
}

// Keys returns the demo keys: one for every product, one that allows 2
// requests a minute, one scoped to premium-calculator, a disabled one and an
// expired one. The example serves them, and so does cmd/gatehouse without
// -config; the load tool calls such a gateway with them.
func Keys() []Key {
	key := func(label, plaintext, about string, rec auth.Key) Key {
		rec.ID = "key_demo_" + label
		rec.Hash = auth.HashKey(plaintext)
		return Key{Key: rec, Label: label, Plaintext: plaintext, About: about}
	}
	every := []string{"*"}
	premium := []string{"premium-calculator"}
	return []Key{
		key("full", "ila_tQQCpbGt20EtVWgkAahjuU84aW9eavuQ3WeTsV", "every product, 60/min, 10000/day",
			auth.Key{Name: "Demo: every product", Products: every, PerMinute: 60, PerDay: 10000}),
		key("tiny", "ila_V8RH3qHIdJNpF4spgeD919LdRWHRs3OF43tXVH", "premium-calculator only, 2/min, 1000/day",
			auth.Key{Name: "Demo: one product, 2 requests a minute", Products: premium, PerMinute: 2, PerDay: 1000}),
		key("scoped", "ila_7wXX9PxBOvcPWOtRguD0gcBI5FK2qkyr1AgLZE", "premium-calculator only, 60/min, 10000/day",
			auth.Key{Name: "Demo: one product", Products: premium}),
		key("disabled", "ila_FDidErCQK0tGGRY1DI2FOkLkmHsOXTj41tfoms", "disabled by the administrator",
			auth.Key{Name: "Demo: disabled by the administrator", Products: every, Disabled: true,
				Owner: "demo-co", Windows: []ratelimit.Rate{{Limit: 1000, Period: time.Hour}}}),
		key("expired", "ila_oTPvq5mMSEiyqkJOkhC5cjL7DdJ8SlMh07fYS4", "expired on 2025-01-01",
			auth.Key{Name: "Demo: expired", Products: every, ExpiresAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}),
	}
}

// Plaintext returns the plaintext of the demo key labelled label ("full",
// "tiny", "scoped", "disabled", "expired"), or "" if there is none.
func Plaintext(label string) string {
	for _, k := range Keys() {
		if k.Label == label {
			return k.Plaintext
		}
	}
	return ""
}

// Limits are the limits of a demo key whose record sets none.
func Limits() ratelimit.Limits {
	return ratelimit.Limits{PerMinute: 60, PerDay: 10000}
}

// Owners returns the allowance that all the keys of an owner share, by owner:
// the demo has one owner, demo-co, whose key is the disabled one.
func Owners() map[string][]ratelimit.Rate {
	return map[string][]ratelimit.Rate{
		"demo-co": {{Limit: 600, Period: time.Minute}, {Limit: 50000, Period: 24 * time.Hour}, {Limit: 1000000, Period: 720 * time.Hour}},
	}
}

// PrintKeys writes the demo keys to w, one a line with its label and what it
// may do, and a curl command that calls the gateway listening on addr with
// the first.
func PrintKeys(w io.Writer, addr string) {
	fmt.Fprintln(w, "demo keys (never use them outside a demo):")
	for _, k := range Keys() {
		fmt.Fprintf(w, "  %-9s %s  %s\n", k.Label, k.Plaintext, k.About)
	}
	fmt.Fprintf(w, "try:\n  curl -s -X POST http://%s/api/premium-calculator -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"inputs\":{\"Premium\":1200,\"Age\":42}}'\n", addr, Plaintext("full"))
}
