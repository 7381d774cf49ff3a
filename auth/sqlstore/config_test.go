package sqlstore_test

import (
	"testing"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// TestConfigRefused: New and NewAdmin refuse a nil database with an error when
// they are called, not with a nil dereference at the first query.
func TestConfigRefused(t *testing.T) {
	const want = "sqlstore: db is nil"
	if s, err := sqlstore.New(nil, sqlstore.Config{}); s != nil || err == nil || err.Error() != want {
		t.Errorf("New(nil) = %v, %v; want nil and %q", s, err, want)
	}
	if a, err := sqlstore.NewAdmin(nil, sqlstore.AdminConfig{}); a != nil || err == nil || err.Error() != want {
		t.Errorf("NewAdmin(nil) = %v, %v; want nil and %q", a, err, want)
	}
}
