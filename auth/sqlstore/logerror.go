package sqlstore

import (
	"errors"
	"net"
	"regexp"

	"github.com/jackc/pgx/v5/pgconn"
)

// logError returns the text of err, a database failure, for a log line: what
// went wrong without where. A driver's error often names the database's host
// and port ("failed to connect to `user=… database=…`: 10.0.3.7:5432 …"),
// and an internal address belongs in no log line, as a key does not:
//
//   - a network failure gives its operation and cause ("dial: connect:
//     connection refused"; a failed name lookup "lookup: no such host");
//   - an error the PostgreSQL server sent gives its message and SQLSTATE;
//   - anything else gives its text with every address-like word
//     (host:port, an IP address, host=…) replaced by "[address]".
func logError(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "lookup: " + dns.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + scrubAddresses(op.Err.Error())
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return scrubAddresses(pg.Message) + " (SQLSTATE " + pg.Code + ")"
	}
	return scrubAddresses(err.Error())
}

// addressLike matches what logError takes for an address: host=… or
// hostaddr=… settings, [IPv6]:port, IPv4 addresses with or without a port,
// and name:port.
var addressLike = regexp.MustCompile(`\b(?:host|hostaddr)=\S+|\[[0-9A-Fa-f:.%\w]+\](?::\d+)?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\b[\w.-]+:\d{2,5}\b`)

// scrubAddresses replaces every address-like word of s by "[address]".
func scrubAddresses(s string) string {
	return addressLike.ReplaceAllString(s, "[address]")
}
