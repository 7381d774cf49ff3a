// Package api holds the checks of what a user of gatehouse gets from the
// module proxy: the published modules, their exported API (one listing per
// module in this directory) and the release that tags them. It is a module of
// its own that is never published.
//
// # Listings
//
// Each published module's exported API is listed in this directory, one line
// per name in the form of the Go project's api/*.txt (gatehouse.txt for the
// core module, sqlstore.txt, redisstore.txt, promgatehouse.txt): every
// exported func, method, type, struct field, interface method, const and var
// of each package a user can import, read from the files the default build
// context compiles. TestListings fails, with the lines added and removed,
// while a listing differs from the tree, so a change to an exported name is
// made together with its listing, in the same commit, and reviewed there.
//
// After changing an exported name on purpose, rewrite the listings and
// commit them with the change:
//
//	cd api && go test ./ -run TestListings -update
//
// `go run ./cmd/exported` prints the number of exported names of each
// package.
package api

// Module is one module of this repository that is published.
type Module struct {
	// Path is the module path, as in its go.mod.
	Path string
	// Dir is its directory, relative to the repository root.
	Dir string
	// Listing names the file in this directory that lists its exported API,
	// or is empty for a command, which exports none.
	Listing string
}

// Published returns the modules a release tags, all at one version: the
// core first, then the nested modules.
func Published() []Module {
	return []Module{
		{"github.com/gatehouse-go/gatehouse", ".", "gatehouse.txt"},
		{"github.com/gatehouse-go/gatehouse/auth/sqlstore", "auth/sqlstore", "sqlstore.txt"},
		{"github.com/gatehouse-go/gatehouse/ratelimit/redisstore", "ratelimit/redisstore", "redisstore.txt"},
		{"github.com/gatehouse-go/gatehouse/promgatehouse", "promgatehouse", "promgatehouse.txt"},
		{"github.com/gatehouse-go/gatehouse/cmd/gatehouse", "cmd/gatehouse", ""},
	}
}
