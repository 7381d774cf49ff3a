package main

import (
	"context"
	"path/filepath"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// usagePair is -usage-compare's two gateways on one SQLite key database, one
// recording usage (the default -usage-flush, 10 s) and one not
// (-usage-flush 0), and the key both serve.
type usagePair struct {
	off, on *process
	key     string
}

// startUsagePair creates, in dir, a SQLite key database holding one key for
// the in-process product with limits never reached, and starts the two
// gateways of bin on it with the in-process configuration.
func startUsagePair(ctx context.Context, bin, configPath, dir, logLevel string) (*usagePair, error) {
	url := "sqlite:" + filepath.Join(dir, "usage-keys.db")
	db, err := sqlstore.Open(url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return nil, err
	}
	admin, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
	if err != nil {
		return nil, err
	}
	plain, _, err := admin.As("load tool").Create(ctx, sqlstore.Spec{Name: "load", Owner: "load", Products: []string{inProcessProduct}, PerMinute: bulkPerMinute, PerDay: bulkPerDay})
	if err != nil {
		return nil, err
	}
	u := &usagePair{key: plain}
	if u.off, err = startGateway(bin, configPath, logLevel, "-demo-upstream=false", "-db", url, "-usage-flush", "0"); err != nil {
		return nil, err
	}
	if u.on, err = startGateway(bin, configPath, logLevel, "-demo-upstream=false", "-db", url); err != nil {
		u.off.stop()
		return nil, err
	}
	return u, nil
}

// stop stops both gateways.
func (u *usagePair) stop() {
	u.off.stop()
	u.on.stop()
}
