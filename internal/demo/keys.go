package demo

// Secret is the demo upstream's credential: [Upstream] is given it, and the
// example's embedded configuration adds it to forwarded calls as
// "Authorization: Bearer demo-upstream-secret".
const Secret = "demo-upstream-secret"

// Key is one of the demo keys: its label, its id in the configuration, its
// plaintext and what it may do.
type Key struct {
	Label, ID, Plaintext, About string
}

// Keys returns the plaintext keys whose hashes the example's embedded
// configuration (example/default-config.json) holds. The example prints them
// at start-up so that the README's walkthrough works as written, and the load
// tool calls a gateway that runs that configuration with them; a real
// configuration holds hashes only.
func Keys() []Key {
	return []Key{
		{"full", "key_demo_full", "ila_tQQCpbGt20EtVWgkAahjuU84aW9eavuQ3WeTsV", "every product, 60/min, 10000/day"},
		{"tiny", "key_demo_tiny", "ila_V8RH3qHIdJNpF4spgeD919LdRWHRs3OF43tXVH", "premium-calculator only, 2/min, 1000/day"},
		{"scoped", "key_demo_scoped", "ila_7wXX9PxBOvcPWOtRguD0gcBI5FK2qkyr1AgLZE", "premium-calculator only, 60/min, 10000/day"},
		{"disabled", "key_demo_disabled", "ila_FDidErCQK0tGGRY1DI2FOkLkmHsOXTj41tfoms", "disabled by the administrator"},
		{"expired", "key_demo_expired", "ila_oTPvq5mMSEiyqkJOkhC5cjL7DdJ8SlMh07fYS4", "expired on 2025-01-01"},
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
