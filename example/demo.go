package main

// demoSecret is the demo upstream's credential; the embedded configuration
// adds it to forwarded calls as "Authorization: Bearer demo-upstream-secret".
const demoSecret = "demo-upstream-secret"

// demoKeys are the plaintext keys whose hashes the embedded configuration holds.
// They are printed at start-up so the README's walkthrough works as written; a
// real configuration holds hashes only.
var demoKeys = []struct{ label, id, key, about string }{
	{"full", "key_demo_full", "ila_tQQCpbGt20EtVWgkAahjuU84aW9eavuQ3WeTsV", "every product, 60/min, 10000/day"},
	{"tiny", "key_demo_tiny", "ila_V8RH3qHIdJNpF4spgeD919LdRWHRs3OF43tXVH", "premium-calculator only, 2/min, 1000/day"},
	{"scoped", "key_demo_scoped", "ila_7wXX9PxBOvcPWOtRguD0gcBI5FK2qkyr1AgLZE", "premium-calculator only, 60/min, 10000/day"},
	{"disabled", "key_demo_disabled", "ila_FDidErCQK0tGGRY1DI2FOkLkmHsOXTj41tfoms", "disabled by the administrator"},
	{"expired", "key_demo_expired", "ila_oTPvq5mMSEiyqkJOkhC5cjL7DdJ8SlMh07fYS4", "expired on 2025-01-01"},
}
