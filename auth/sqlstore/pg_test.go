package sqlstore_test

import (
	"sync"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/pgtest"
)

// servers remembers the PostgreSQL server behind each URL openDB returned, for
// the tests that stop and restart it.
var servers sync.Map // URL → *pgtest.Server

func pgServerOf(t *testing.T, url string) *pgtest.Server {
	v, ok := servers.Load(url)
	if !ok {
		t.Fatal("no server for", url)
	}
	return v.(*pgtest.Server)
}
