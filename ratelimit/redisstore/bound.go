package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// maxReplyElems bounds the elements that one Redis reply may declare: the
// counts of all its aggregates at every depth (arrays, sets and pushes count
// their length; maps and attributes two per entry). go-redis makes an
// aggregate's slice or map from its count as soon as it reads it, before any
// element arrives. Redis 7's reply to COMMAND, the largest that a client of
// this package reads (a Cluster client asks for it), declares about 11,500;
// the store's scripts return a few integers.
const maxReplyElems = 1 << 16

// maxReplyBytes bounds the bytes of one reply on the wire, each string's
// counted in full when its length arrives (go-redis allocates it then).
// Redis 7's reply to COMMAND is about 90 KB.
const maxReplyBytes = 4 << 20

// maxReplyLine bounds one line of a reply, its type byte and CRLF counted: a
// simple string, error, number, or a length. go-redis copies and grows a
// line longer than its read buffer until its end arrives. Redis's lines are
// short (its errors are the longest).
const maxReplyLine = 64 << 10

// ErrReplyTooLarge is the read error of a connection of a [BoundReplies]
// dialer whose Redis sent a reply above the bound: the connection is closed
// before go-redis allocates for it.
var ErrReplyTooLarge = fmt.Errorf("redisstore: a Redis reply declares more than %d elements or %d bytes, or has a line of more than %d; the connection is closed", maxReplyElems, maxReplyBytes, maxReplyLine)

// ErrReplyMalformed is the read error of a connection of a [BoundReplies]
// dialer whose Redis sent something that is not RESP: the connection is
// closed.
var ErrReplyMalformed = errors.New("redisstore: a Redis reply is not RESP2 or RESP3; the connection is closed")

// DialFunc is go-redis's dialer, the type of the Dialer field of
// redis.Options, redis.ClusterOptions, redis.FailoverOptions and
// redis.UniversalOptions.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// BoundReplies returns a dialer for go-redis whose connections bound what
// Redis's replies can make the client allocate, so that a hostile or broken
// endpoint on Redis's address costs failed commands (a 503 or a local
// decision, by the rate limiter's policy) and never the process's memory:
// go-redis sizes a reply's slices, maps and strings from the lengths on the
// wire (`*68719476736` is a terabyte). Each connection reads Redis's replies
// through a RESP2 and RESP3 scanner, and fails the read and closes the
// connection ([ErrReplyTooLarge]) as soon as one reply declares more than
// 65,536 elements in all its aggregates (a map's entries count two), or more
// than 4 MiB in all (a string's length counted when it arrives), about 30
// times what the largest reply a client of this package reads needs (Redis
// 7's COMMAND), or a line (a simple string or error) of more than 64 KiB. A reply that is not RESP fails it too ([ErrReplyMalformed]).
// What go-redis allocates for one reply is then at most a few megabytes.
//
// dial makes the connections; with dial nil, they are TCP, and TLS with
// tlsConfig when it is not nil (a Dialer replaces go-redis's own, which would
// otherwise do the TLS). On every client you make for [New]:
//
//	o.Dialer = redisstore.BoundReplies(o.Dialer, o.TLSConfig)   // redis.Options
//	co.Dialer = redisstore.BoundReplies(co.Dialer, co.TLSConfig) // redis.ClusterOptions
//
// [NewFromURL]'s client has it.
func BoundReplies(dial DialFunc, tlsConfig *tls.Config) DialFunc {
	if dial == nil {
		dial = defaultDial(tlsConfig)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return boundConn(c), nil
	}
}

// defaultDial is go-redis's default dialer (TCP keep-alive probes after 30 s
// idle, 5 s apart, 3 of them; TLS with tlsConfig if not nil), except that the
// TLS handshake too is bounded by ctx, which carries go-redis's DialTimeout.
func defaultDial(tlsConfig *tls.Config) DialFunc {
	d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}}
	if tlsConfig == nil {
		return d.DialContext
	}
	return (&tls.Dialer{NetDialer: d, Config: tlsConfig}).DialContext
}

// boundConn returns c reading through a replyScanner. A c that is a
// syscall.Conn (TCP, not TLS) stays one, so that go-redis's health check of
// an idle connection (a peek at its socket) still runs.
func boundConn(c net.Conn) net.Conn {
	b := &boundedConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		return &boundedSysConn{boundedConn: b, sys: sc}
	}
	return b
}

// boundedConn is a connection whose reads go through a replyScanner: the
// first reply above the bound fails the read, closes the connection, and
// fails every later read.
type boundedConn struct {
	net.Conn
	scan replyScanner
	err  error
}

// Read reads from the connection and scans what it read; a reply above the
// bound, or not RESP, fails it (nothing read) and closes the connection.
func (c *boundedConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if serr := c.scan.scan(p[:n]); serr != nil {
			c.err = serr
			c.Conn.Close()
			return 0, serr
		}
	}
	return n, err
}

// boundedSysConn is a boundedConn over a syscall.Conn.
type boundedSysConn struct {
	*boundedConn
	sys syscall.Conn
}

// SyscallConn returns the underlying connection's, for go-redis's health
// check, which only peeks at the socket.
func (c *boundedSysConn) SyscallConn() (syscall.RawConn, error) { return c.sys.SyscallConn() }

// Where a replyScanner is in the stream.
const (
	atValue  = iota // the type byte of a value (the first of a reply if pending is 0)
	atLength        // the digits of a length, after its type byte
	atLF            // the '\n' that ends a length's line
	atLine          // in a line value (+ - : _ , # ( ), up to its '\n'
	atBody          // in a string's body and its CRLF
)

// replyScanner follows a stream of RESP2 and RESP3 replies byte by byte,
// keeping only counts, and checks each reply against maxReplyElems,
// maxReplyBytes and maxReplyLine. A length too large fails as soon as its digits pass the
// bound, before its line ends.
type replyScanner struct {
	state   int
	kind    byte  // the type byte of the length being read
	neg     bool  // the length began with '-'
	digits  int   // digits of the length so far
	line    int   // bytes of the current line so far
	n       int64 // the length so far
	body    int64 // bytes of a string's body and CRLF still to come
	pending int64 // values still due in the current reply; 0 between replies
	elems   int64 // elements the current reply has declared
	bytes   int64 // bytes of the current reply, read or declared
}

// scan takes the next bytes of the stream: nil, or ErrReplyTooLarge or
// ErrReplyMalformed at the first byte that makes the stream so.
func (s *replyScanner) scan(p []byte) error {
	for i := 0; i < len(p); {
		if s.state == atBody {
			k := min(int64(len(p)-i), s.body)
			s.body -= k
			i += int(k)
			if s.body == 0 {
				s.state = atValue
			}
			continue
		}
		c := p[i]
		i++
		if s.state == atValue && s.pending == 0 { // a new reply
			s.pending, s.elems, s.bytes = 1, 0, 0
		}
		if s.bytes++; s.bytes > maxReplyBytes {
			return ErrReplyTooLarge
		}
		if s.line++; s.state == atValue {
			s.line = 1
		} else if s.line > maxReplyLine {
			return ErrReplyTooLarge
		}
		switch s.state {
		case atValue:
			switch c {
			case '+', '-', ':', '_', ',', '#', '(':
				s.pending--
				s.state = atLine
			case '$', '=', '!', '*', '~', '>', '%', '|':
				s.kind, s.neg, s.digits, s.n = c, false, 0, 0
				s.state = atLength
			default:
				return ErrReplyMalformed
			}
		case atLine:
			if c == '\n' {
				s.state = atValue
			}
		case atLength:
			switch {
			case c == '-' && s.digits == 0 && !s.neg:
				s.neg = true
			case c >= '0' && c <= '9':
				s.digits++
				s.n = s.n*10 + int64(c-'0')
				if s.neg && s.n != 1 {
					return ErrReplyMalformed // the only negative length is -1, a null
				}
				if !s.neg && s.n > s.room() {
					return ErrReplyTooLarge
				}
			case c == '\r' && s.digits > 0:
				s.state = atLF
			default:
				return ErrReplyMalformed
			}
		case atLF:
			if c != '\n' {
				return ErrReplyMalformed
			}
			s.endLength()
		}
	}
	return nil
}

// room is the largest length the current reply can still declare for s.kind:
// elements for an aggregate; for a string, body bytes, with the CRLFs of its
// length's line and of its body counted.
func (s *replyScanner) room() int64 {
	switch s.kind {
	case '$', '=', '!':
		return maxReplyBytes - s.bytes - 4
	case '%', '|':
		return (maxReplyElems - s.elems) / 2
	}
	return maxReplyElems - s.elems
}

// endLength acts on a length whose line has ended: a string's body follows,
// or an aggregate's elements, or nothing (a null, -1).
func (s *replyScanner) endLength() {
	s.state = atValue
	attr := s.kind == '|' // an attribute comes before the value it describes
	if !attr {
		s.pending--
	}
	if s.neg {
		return
	}
	switch s.kind {
	case '$', '=', '!':
		s.body = s.n + 2
		s.bytes += s.body
		s.state = atBody
	case '%', '|':
		s.elems += 2 * s.n
		s.pending += 2 * s.n
	default:
		s.elems += s.n
		s.pending += s.n
	}
}
