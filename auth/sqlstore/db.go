package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// dialect is the SQL flavour of a database: only the placeholders differ.
type dialect int

const (
	sqliteDialect dialect = iota
	postgresDialect
)

// errNoDB refuses New and NewAdmin without a database.
var errNoDB = errors.New("sqlstore: db is nil")

// dialectOf tells the dialect of db from its driver: pgx's stdlib driver or
// modernc.org/sqlite. A nil db is an error, so that New and NewAdmin refuse
// it when they are called rather than at the first query.
func dialectOf(db *sql.DB) (dialect, error) {
	if db == nil {
		return 0, errNoDB
	}
	switch d := db.Driver().(type) {
	case *stdlib.Driver:
		return postgresDialect, nil
	case *sqlite.Driver:
		return sqliteDialect, nil
	default:
		return 0, fmt.Errorf("sqlstore: unsupported driver %T: use pgx's stdlib (PostgreSQL) or modernc.org/sqlite", d)
	}
}

// rebind rewrites the ? placeholders of query as $1, $2… for PostgreSQL. The
// queries of this package hold no ? inside a string literal.
func (d dialect) rebind(query string) string {
	if d != postgresDialect {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Open opens the database named by url:
//
//	sqlite:PATH                  a SQLite file (created if absent), WAL mode
//	postgres://user@host/db…     PostgreSQL, through pgx (postgresql:// too)
//
// It does not connect or migrate: see [Migrate]. The caller closes the
// returned *sql.DB.
func Open(url string) (*sql.DB, error) {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, errors.New("sqlstore: sqlite: URL without a path")
		}
		// busy_timeout lets writers from several processes (two gateways and
		// the CLI) wait for one another instead of failing; an immediate
		// transaction takes the write lock at BEGIN, so two writers never
		// deadlock upgrading a read lock.
		return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return sql.Open("pgx", url)
	}
	return nil, errors.New("sqlstore: database URL must start with sqlite: or postgres://")
}
