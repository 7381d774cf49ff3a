// Package refused is the tests' check of a configuration that cannot work:
// the constructor that is given it panics, at once, with an error whose text
// is the one the package's Validate returns (docs/adopting.md has the rule).
//
//	refused.Panic(t, "auth: Config.Store is nil: no key could ever pass", func() {
//		auth.Middleware(auth.Config{})
//	})
package refused

import "testing"

// Panic fails t unless build panics with an error whose text is want.
func Panic(t testing.TB, want string, build func()) {
	t.Helper()
	defer func() {
		t.Helper()
		v := recover()
		err, ok := v.(error)
		if !ok || err.Error() != want {
			t.Errorf("panic %v (%T), want the error %q", v, v, want)
		}
	}()
	build()
}
