package auth

import (
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/refused"
)

// TestConfigRefused: a configuration that cannot work is refused when the
// middleware is built, with a panic whose error is Validate's and names the
// field, never with a handler that answers 401 or 404 to every request; so is
// a nil handler to wrap.
func TestConfigRefused(t *testing.T) {
	const noStore = "auth: Config.Store is nil: no key could ever pass"
	const noCatalog = "auth: ProductConfig.Catalog is nil: no product could ever be found"
	if err := (Config{}).Validate(); err == nil || err.Error() != noStore {
		t.Errorf("Config{}.Validate() = %v, want %q", err, noStore)
	}
	if err := (Config{Store: NewMemoryStore()}).Validate(); err != nil {
		t.Errorf("Validate with a Store: %v", err)
	}
	if err := (ProductConfig{}).Validate(); err == nil || err.Error() != noCatalog {
		t.Errorf("ProductConfig{}.Validate() = %v, want %q", err, noCatalog)
	}
	if err := (ProductConfig{Catalog: NewMemoryCatalog()}).Validate(); err != nil {
		t.Errorf("Validate with a Catalog: %v", err)
	}
	refused.Panic(t, noStore, func() { Middleware(Config{Logger: discard}) })
	refused.Panic(t, noCatalog, func() { Products(ProductConfig{Logger: discard}) })
	refused.Panic(t, "auth: NewCache: store is nil: no key could ever be found", func() {
		NewCache(nil, CacheConfig{})
	})
	refused.Panic(t, "auth: Middleware of a nil handler", func() { Middleware(Config{Store: NewMemoryStore()})(nil) })
	refused.Panic(t, "auth: Products of a nil handler", func() { Products(ProductConfig{Catalog: NewMemoryCatalog()})(nil) })
}
