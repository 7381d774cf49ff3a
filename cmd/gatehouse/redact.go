package main

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// redactURL returns raw with the password of its user info replaced by
// "xxxxx", as url.URL.Redacted writes it, for an error or a log line: every
// URL the gateway names in one (-redis, -db, an upstream's url and
// health_url) goes through it or through redactError. Unlike Redacted it
// needs no parsable URL, since the URL an error is about is often the one
// that did not parse.
func redactURL(raw string) string {
	r, _ := redact(raw)
	return r
}

// redactError returns err with every copy of raw in its text (as written or
// quoted, as net/url's errors quote it) redacted by redactURL, and a bad
// escape inside the password, which net/url's error would quote, named
// without it. The error returned does not unwrap to err, whose text holds the
// password; it is err itself when raw has no password.
func redactError(err error, raw string) error {
	red, password := redact(raw)
	if err == nil || password == "" {
		return err
	}
	text := strings.ReplaceAll(err.Error(), raw, red)
	if q, rq := strconv.Quote(raw), strconv.Quote(red); q != `"`+raw+`"` {
		text = strings.ReplaceAll(text, q[1:len(q)-1], rq[1:len(rq)-1])
	}
	var esc url.EscapeError
	if errors.As(err, &esc) && strings.Contains(password, string(esc)) {
		text = strings.ReplaceAll(text, esc.Error(), "invalid URL escape in the password")
	}
	return errors.New(text)
}

// redact returns raw with its password replaced by "xxxxx", and the password
// as raw writes it ("" for none). The user info ends at the last "@" of the
// authority, as net/url reads it. In a URL net/url cannot read, or one with
// no "//" authority, it ends at the last "@" of all: that may hide more than
// the password of an odd URL, never less.
func redact(raw string) (string, string) {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	end := len(rest)
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			end = i
		}
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw, ""
	}
	user, password, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return raw, ""
	}
	return prefix + user + ":xxxxx" + rest[at:], password
}
