package redisstore

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// TestReplyScanner: streams of replies within the bound pass whole and byte
// by byte, RESP2 and RESP3 alike (nulls, attributes, pushes, maps, every
// scalar); each length above it fails with ErrReplyTooLarge (before its line
// ends), each byte that is not RESP with ErrReplyMalformed.
func TestReplyScanner(t *testing.T) {
	elems := strconv.Itoa(maxReplyElems)
	pass := []string{
		"",
		"+OK\r\n",
		":1\r\n:-7\r\n",
		"*6\r\n:1\r\n:0\r\n:0\r\n:0\r\n:0\r\n:1733300000000\r\n", // a decision
		"$-1\r\n*-1\r\n_\r\n%-1\r\n=-1\r\n",
		"$0\r\n\r\n$5\r\nhel\r\n\r\n",
		"%2\r\n+server\r\n$5\r\nredis\r\n+proto\r\n:3\r\n",
		"|1\r\n+ttl\r\n:3\r\n$1\r\nx\r\n", // an attribute, then its value
		"|-1\r\n:1\r\n",
		">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
		"~2\r\n,1.5\r\n#t\r\n(12345678901234567890123\r\n=8\r\ntxt:abcd\r\n!9\r\nERR thing\r\n-ERR x\r\n",
		"*" + elems + "\r\n" + strings.Repeat(":0\r\n", maxReplyElems),
		// The bound is a reply's: the next one starts afresh.
		"*" + elems + "\r\n" + strings.Repeat("_\r\n", maxReplyElems) + "*" + elems + "\r\n" + strings.Repeat("_\r\n", maxReplyElems),
		"$" + strconv.Itoa(maxReplyBytes-len(strconv.Itoa(maxReplyBytes))-5) + "\r\n" + strings.Repeat("x", maxReplyBytes-len(strconv.Itoa(maxReplyBytes))-5) + "\r\n",
		"*2\r\n*2\r\n:1\r\n:2\r\n*0\r\n",
		"-" + strings.Repeat("a", maxReplyLine-3) + "\r\n",
		"$" + strings.Repeat("0", maxReplyLine-4) + "1\r\nx\r\n",
	}
	tooLarge := []string{
		"*68719476736\r\n",
		"*68719476736", // fails before its line ends
		"$68719476736\r\n",
		"%68719476736\r\n",
		"~68719476736\r\n",
		">68719476736\r\n",
		"|68719476736\r\n",
		"=68719476736\r\n",
		"!68719476736\r\n",
		"*" + strconv.Itoa(maxReplyElems+1) + "\r\n",
		"%" + strconv.Itoa(maxReplyElems/2+1) + "\r\n",
		"*65536\r\n*2\r\n",               // elements at every depth count
		"*2\r\n$4194300\r\n$4194300\r\n", // so do the bytes
		"$" + strconv.Itoa(maxReplyBytes-len(strconv.Itoa(maxReplyBytes))-4) + "\r\n",
		"+" + strings.Repeat("a", maxReplyLine), // a line too long, without its end
		"-" + strings.Repeat("a", maxReplyLine-2) + "\r\n",
		"*1" + strings.Repeat("0", maxReplyLine) + "\r\n",
		"*99999999999999999999999999999999\r\n",
	}
	malformed := []string{
		"x\r\n", "\r\n", "*-2\r\n", "$-0\r\n", "*\r\n", "$-\r\n", "*1x\r\n", "*1\r\r", "*+1\r\n", "$?\r\n", "*?\r\n",
		":1\r\n?", "$1\r\nab\r\n",
	}
	check := func(name, in string, want error) {
		t.Helper()
		var whole replyScanner
		if err := whole.scan([]byte(in)); err != want {
			t.Errorf("%s %.40q: scanned whole, %v; want %v", name, in, err, want)
		}
		if len(in) > 1<<16 {
			return
		}
		var bytewise replyScanner
		var err error
		for i := 0; i < len(in) && err == nil; i++ {
			err = bytewise.scan([]byte{in[i]})
		}
		if err != want {
			t.Errorf("%s %.40q: byte by byte, %v; want %v", name, in, err, want)
		}
	}
	for _, in := range pass {
		check("pass", in, nil)
	}
	for _, in := range tooLarge {
		check("too large", in, ErrReplyTooLarge)
	}
	for _, in := range malformed {
		check("malformed", in, ErrReplyMalformed)
	}
}

// FuzzReplyScanner holds the scanner, which reads bytes a hostile Redis
// chooses, to a recursive reference reader: a stream of whole replies that
// are RESP and within the bound passes; a stream that passes has every reply
// within the bound, the last one's lengths so far too; and where the stream
// is cut makes no difference.
func FuzzReplyScanner(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "*6\r\n:1\r\n:0\r\n:0\r\n:0\r\n:0\r\n:1733300000000\r\n", "*68719476736\r\n", "$68719476736\r\n",
		"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n_\r\n", "|1\r\n+k\r\n:1\r\n:2\r\n", ">2\r\n$1\r\na\r\n*-1\r\n", "*65536\r\n*65536\r\n",
		"~1\r\n,1.5\r\n=5\r\ntxt:a\r\n!3\r\nERR\r\n", "*-1\r\n$-1\r\n%-1\r\n", "*3\r\n*1\r\n*1\r\n:1\r\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		var whole replyScanner
		err := whole.scan(in)
		var parts replyScanner
		var perr error
		for rest, n := in, max(1, int(cut%64)); len(rest) > 0 && perr == nil; n = n%7 + 1 {
			k := min(n, len(rest))
			perr, rest = parts.scan(rest[:k]), rest[k:]
		}
		if err != perr {
			t.Fatalf("%q: whole %v, in parts %v", in, err, perr)
		}
		if err != nil && err != ErrReplyTooLarge && err != ErrReplyMalformed {
			t.Fatalf("%q: %v", in, err)
		}
		sizes, state := referenceReplies(in)
		if state == refWhole && err != nil {
			t.Fatalf("%q: whole replies within the bound, scanner says %v", in, err)
		}
		if err == nil {
			if state == refMalformed {
				t.Fatalf("%q: not RESP, the scanner passed it", in)
			}
			for i, sz := range sizes {
				if sz.elems > maxReplyElems || sz.bytes > maxReplyBytes {
					t.Fatalf("%q: reply %d declares %d elements, %d bytes; the scanner passed it", in, i, sz.elems, sz.bytes)
				}
			}
		}
	})
}

// refState is what referenceReplies found after the replies it read.
type refState int

const (
	refWhole     refState = iota // nothing more: every reply whole and within the bound
	refCut                       // the last reply is cut short
	refMalformed                 // something that is not RESP
	refTooLarge                  // a reply above the bound
)

// refSize is one reply's elements and bytes: every byte of its whole lines,
// and each string's body and CRLF.
type refSize struct{ elems, bytes int64 }

// referenceReplies reads in as go-redis does, recursively, a line at a time,
// and returns each reply's size (the last one's so far, if cut) and how it
// ended.
func referenceReplies(in []byte) ([]refSize, refState) {
	var sizes []refSize
	for len(in) > 0 {
		var sz refSize
		var st refState
		in, st = refValue(in, &sz)
		sizes = append(sizes, sz)
		if st == refWhole && (sz.elems > maxReplyElems || sz.bytes > maxReplyBytes) {
			st = refTooLarge
		}
		if st != refWhole {
			return sizes, st
		}
	}
	return sizes, refWhole
}

// refValue reads one value from in into sz, returning what follows it.
func refValue(in []byte, sz *refSize) ([]byte, refState) {
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		return nil, refCut
	}
	line, rest := in[:i+1], in[i+1:]
	sz.bytes += int64(len(line))
	if len(line) > maxReplyLine {
		return nil, refTooLarge
	}
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return rest, refWhole
	case '$', '=', '!', '*', '~', '>', '%', '|':
	default:
		return nil, refMalformed
	}
	body := line[1 : len(line)-1] // without the type and the '\n'
	if len(body) == 0 || body[len(body)-1] != '\r' {
		return nil, refMalformed
	}
	digits := string(body[:len(body)-1])
	if digits == "-1" {
		if line[0] == '|' {
			return refValue(rest, sz)
		}
		return rest, refWhole
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return nil, refMalformed
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > 1<<40 {
		return nil, refTooLarge
	}
	switch line[0] {
	case '$', '=', '!':
		sz.bytes += n + 2
		if sz.bytes > maxReplyBytes {
			return nil, refTooLarge
		}
		if int64(len(rest)) < n+2 {
			return nil, refCut
		}
		return rest[n+2:], refWhole
	case '%', '|':
		n *= 2
	}
	sz.elems += n
	if sz.elems > maxReplyElems {
		return nil, refTooLarge
	}
	for range n {
		var st refState
		if rest, st = refValue(rest, sz); st != refWhole {
			return nil, st
		}
	}
	if line[0] == '|' {
		return refValue(rest, sz)
	}
	return rest, refWhole
}
