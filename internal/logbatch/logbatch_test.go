package logbatch

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failsafe bounds every wait of these tests for something that must happen;
// no test waits on time for something to happen.
const failsafe = 10 * time.Second

// sink is an output that keeps each Write apart. With hold, each Write
// waits until release is closed.
type sink struct {
	mu      sync.Mutex
	writes  []string
	wrote   chan struct{} // one value per Write, when it has been kept
	hold    bool
	entered chan struct{} // one value per Write, as it begins (with hold)
	release chan struct{}
	err     error // returned by every Write
}

func newSink() *sink {
	return &sink{wrote: make(chan struct{}, 10000), entered: make(chan struct{}, 10000), release: make(chan struct{})}
}

func (s *sink) Write(p []byte) (int, error) {
	if s.hold {
		s.entered <- struct{}{}
		<-s.release
	}
	s.mu.Lock()
	s.writes = append(s.writes, string(p))
	s.mu.Unlock()
	s.wrote <- struct{}{}
	if s.err != nil {
		return len(p), s.err
	}
	return len(p), nil
}

func (s *sink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.writes...)
}

// waitWrite waits for the sink's next Write to be kept.
func (s *sink) waitWrite(t *testing.T) {
	t.Helper()
	select {
	case <-s.wrote:
	case <-time.After(failsafe):
		t.Fatalf("no Write reached the output within %v; it has %q", failsafe, s.got())
	}
}

// clock is a Flush timer the test fires: each start is reported on armed.
type clock struct {
	armed chan time.Duration
	fire  chan time.Time
}

func newClock() *clock {
	return &clock{armed: make(chan time.Duration, 100), fire: make(chan time.Time)}
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.armed <- d
	return c.fire
}

func (c *clock) waitArmed(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(failsafe):
		t.Fatalf("the timer was not started within %v", failsafe)
		return 0
	}
}

// line returns a line of exactly n bytes that names i.
func line(i, n int) string {
	s := fmt.Sprintf("line %d ", i)
	return s + strings.Repeat("x", n-len(s)-1) + "\n"
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
	}
}

func closeWriter(t *testing.T, w *Writer) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(failsafe):
		t.Fatalf("Close did not return within %v", failsafe)
	}
}

// TestTimerWritesAllInOneWrite: nothing reaches the output before the timer
// fires; then everything held does, in one Write. The first Write into an
// empty buffer starts the timer, with Config.Flush, once.
func TestTimerWritesAllInOneWrite(t *testing.T) {
	out, c := newSink(), newClock()
	w := New(out, Config{Flush: 10 * time.Millisecond, MaxPending: 1000, After: c.After})
	defer closeWriter(t, w)

	var want string
	for i := range 3 {
		s := line(i, 100)
		write(t, w, s)
		want += s
	}
	if d := c.waitArmed(t); d != 10*time.Millisecond {
		t.Errorf("timer started for %v, want Config.Flush, 10ms", d)
	}
	if got := out.got(); len(got) != 0 {
		t.Fatalf("before the timer fired the output got %q, want nothing", got)
	}
	c.fire <- time.Time{}
	out.waitWrite(t)
	if got := out.got(); len(got) != 1 || got[0] != want {
		t.Fatalf("after the timer fired the output got %q, want one Write of %q", got, want)
	}
	if n := len(c.armed); n != 0 {
		t.Errorf("timer started %d more times for one buffer, want once", n)
	}

	// The next line, into an empty buffer, starts the timer again.
	write(t, w, line(3, 100))
	c.waitArmed(t)
	c.fire <- time.Time{}
	out.waitWrite(t)
	if got := out.got(); len(got) != 2 || got[1] != line(3, 100) {
		t.Fatalf("second batch: output got %q, want a second Write of line 3", got)
	}
}

// TestHalfFullWritesWithoutTimer: once half of MaxPending is held it is
// written without the timer, and not before.
func TestHalfFullWritesWithoutTimer(t *testing.T) {
	out, c := newSink(), newClock()
	w := New(out, Config{Flush: time.Hour, MaxPending: 1000, After: c.After})

	var first, second string
	for i := range 5 { // 500 bytes: half
		first += line(i, 100)
		write(t, w, line(i, 100))
	}
	out.waitWrite(t)
	for i := 5; i < 9; i++ { // 400 bytes: under half, held until Close
		second += line(i, 100)
		write(t, w, line(i, 100))
	}
	closeWriter(t, w)
	if got := out.got(); len(got) != 2 || got[0] != first || got[1] != second {
		t.Fatalf("output got %q, want the first 5 lines at half full, then the other 4 at Close", got)
	}
}

// TestBound: while the output blocks, Writes are accepted until MaxPending
// bytes are held, then wait; the bytes held never exceed MaxPending; once the
// output is released everything arrives, once, in Writes of at most
// MaxPending.
func TestBound(t *testing.T) {
	out, c := newSink(), newClock()
	out.hold = true
	w := New(out, Config{Flush: time.Hour, MaxPending: 1000, After: c.After})

	for i := range 5 { // half full: taken by the flusher, which blocks in out
		write(t, w, line(i, 100))
	}
	select {
	case <-out.entered:
	case <-time.After(failsafe):
		t.Fatal("half full, yet nothing was written")
	}
	for i := 5; i < 15; i++ { // 1000 bytes held: MaxPending, accepted
		write(t, w, line(i, 100))
	}
	var returned atomic.Int64
	var wg sync.WaitGroup
	for i := 15; i < 20; i++ {
		wg.Go(func() {
			if _, err := w.Write([]byte(line(i, 100))); err != nil {
				t.Errorf("Write: %v", err)
			}
			returned.Add(1)
		})
	}
	deadline := time.Now().Add(failsafe)
	for {
		w.mu.Lock()
		waiting, held := w.waiting, len(w.pending)
		w.mu.Unlock()
		if waiting == 5 || returned.Load() > 0 || held > 1000 {
			if waiting != 5 || returned.Load() != 0 || held != 1000 {
				t.Fatalf("output blocked: %d Writes waiting, %d returned, %d bytes held; want 5 waiting, 0 returned, 1000 held", waiting, returned.Load(), held)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the 5 Writes beyond MaxPending neither waited nor returned within %v", failsafe)
		}
		runtime.Gosched()
	}
	if n := len(out.entered); n != 0 {
		t.Fatalf("%d more Writes reached the blocked output, want none", n)
	}

	close(out.release)
	wg.Wait()
	closeWriter(t, w)
	got := out.got()
	seen := map[string]int{}
	for _, b := range got {
		if len(b) > 1000 {
			t.Errorf("a Write of %d bytes reached the output, above MaxPending 1000", len(b))
		}
		for _, l := range strings.SplitAfter(b, "\n") {
			if l != "" {
				seen[l]++
			}
		}
	}
	for i := range 20 {
		if n := seen[line(i, 100)]; n != 1 {
			t.Errorf("line %d reached the output %d times, want once", i, n)
		}
	}
	if all := strings.Join(got, ""); !strings.HasPrefix(all, linesFrom(0, 15, 100)) {
		t.Errorf("the first 15 lines, written in turn, are not first and in order: %q", all)
	}
}

func linesFrom(from, to, n int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(line(i, n))
	}
	return b.String()
}

// TestLargeWriteAfterPending: a Write larger than MaxPending goes straight
// to the output, after what is held, and returns the output's result.
func TestLargeWriteAfterPending(t *testing.T) {
	out, c := newSink(), newClock()
	w := New(out, Config{Flush: time.Hour, MaxPending: 1000, After: c.After})
	defer closeWriter(t, w)

	write(t, w, line(0, 100))
	big := line(1, 1500)
	write(t, w, big)
	if got := out.got(); len(got) != 2 || got[0] != line(0, 100) || got[1] != big {
		t.Fatalf("output got %q, want line 0 then the large line", got)
	}
}

// TestConcurrentWritersWholeAndOrdered: many goroutines write lines of many
// lengths (some larger than MaxPending) while the timer fires at once: every
// line reaches the output exactly once, whole, inside one output Write, and
// each goroutine's lines in the order it wrote them.
func TestConcurrentWritersWholeAndOrdered(t *testing.T) {
	out := newSink()
	now := make(chan time.Time)
	close(now) // a timer that has always fired
	w := New(out, Config{Flush: time.Millisecond, MaxPending: 1024, After: func(time.Duration) <-chan time.Time { return now }})

	const writers, lines = 8, 400
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for n := range lines {
				size := 20 + (g*131+n*57)%300
				if n%7 == 0 {
					size = 1500
				}
				fill := string(rune('a' + (g+n)%26))
				head := fmt.Sprintf("g%d n%d ", g, n)
				s := head + strings.Repeat(fill, size-len(head)-2) + "|\n"
				if k, err := w.Write([]byte(s)); k != len(s) || err != nil {
					t.Errorf("Write = %d, %v", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	closeWriter(t, w)

	next := make([]int, writers)
	for _, b := range out.got() {
		if !strings.HasSuffix(b, "\n") {
			t.Fatalf("an output Write ends inside a line: %q", b)
		}
		for _, l := range strings.SplitAfter(b, "\n") {
			if l == "" {
				continue
			}
			var g, n int
			if _, err := fmt.Sscanf(l, "g%d n%d ", &g, &n); err != nil || g < 0 || g >= writers {
				t.Fatalf("line %q is not one that was written", l)
			}
			head := fmt.Sprintf("g%d n%d ", g, n)
			fill := string(rune('a' + (g+n)%26))
			if body := strings.TrimPrefix(l, head); strings.Trim(body, fill) != "|\n" {
				t.Fatalf("line %q is not whole: mixed with another", l)
			}
			if n != next[g] {
				t.Fatalf("goroutine %d: line %d reached the output where line %d was due", g, n, next[g])
			}
			next[g]++
		}
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("goroutine %d: %d of its %d lines reached the output", g, n, lines)
		}
	}
}

// TestClose: Close writes what is held, ends the flusher, can be called
// again, and later Writes go straight to the output.
func TestClose(t *testing.T) {
	out, c := newSink(), newClock()
	w := New(out, Config{Flush: time.Hour, MaxPending: 1000, After: c.After})
	write(t, w, line(0, 100))
	write(t, w, line(1, 100))
	closeWriter(t, w)
	if got := out.got(); len(got) != 1 || got[0] != line(0, 100)+line(1, 100) {
		t.Fatalf("after Close the output got %q, want lines 0 and 1 in one Write", got)
	}
	select {
	case <-w.done:
	default:
		t.Fatal("Close returned before the flusher ended")
	}
	closeWriter(t, w) // again: nothing to do, no panic
	write(t, w, line(2, 100))
	if got := out.got(); len(got) != 2 || got[1] != line(2, 100) {
		t.Fatalf("a Write after Close: output got %q, want line 2 at once", got)
	}
}

// TestZeroFlushWritesThrough: with Config.Flush zero each Write goes
// straight to the output, and there is no flusher.
func TestZeroFlushWritesThrough(t *testing.T) {
	out := newSink()
	w := New(out, Config{})
	select {
	case <-w.done:
	default:
		t.Fatal("a flusher runs with Flush zero")
	}
	write(t, w, line(0, 100))
	write(t, w, line(1, 100))
	if got := out.got(); len(got) != 2 || got[0] != line(0, 100) || got[1] != line(1, 100) {
		t.Fatalf("output got %q, want each line in its own Write at once", got)
	}
	closeWriter(t, w)
}

var errOut = errors.New("disk full")

// TestFlushReturnsOutputError: an output error does not fail the Write that
// was held; the next Flush (or Close) returns it, once; Flush writes now.
func TestFlushReturnsOutputError(t *testing.T) {
	out, c := newSink(), newClock()
	out.err = errOut
	w := New(out, Config{Flush: time.Hour, MaxPending: 1000, After: c.After})

	write(t, w, line(0, 100)) // held: no error
	if err := w.Flush(); !errors.Is(err, errOut) {
		t.Fatalf("Flush = %v, want %v", err, errOut)
	}
	if got := out.got(); len(got) != 1 || got[0] != line(0, 100) {
		t.Fatalf("after Flush the output got %q, want line 0", got)
	}
	<-out.wrote
	if err := w.Flush(); err != nil {
		t.Fatalf("a second Flush = %v, want nil: the error was returned already", err)
	}

	// An error met by the flusher, at the timer.
	write(t, w, line(1, 100))
	c.waitArmed(t)
	c.fire <- time.Time{}
	out.waitWrite(t)
	if err := w.Close(); !errors.Is(err, errOut) {
		t.Fatalf("Close = %v, want the flusher's %v", err, errOut)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("a second Close = %v, want nil", err)
	}
}

// TestDefaultTimer: without Config.After the Writer's own timer writes each
// batch, and is started again for the next.
func TestDefaultTimer(t *testing.T) {
	out := newSink()
	w := New(out, Config{Flush: time.Millisecond})
	defer closeWriter(t, w)
	for i := range 3 {
		write(t, w, line(i, 100))
		out.waitWrite(t)
	}
	if got := out.got(); strings.Join(got, "") != linesFrom(0, 3, 100) {
		t.Fatalf("output got %q, want lines 0 to 2", got)
	}
}

// TestSteadyStateDoesNotAllocate: once its two buffers have grown, a Write
// and the flusher's Writes allocate nothing.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	now := make(chan time.Time)
	close(now)
	w := New(io.Discard, Config{Flush: time.Millisecond, MaxPending: 4096, After: func(time.Duration) <-chan time.Time { return now }})
	defer closeWriter(t, w)
	p := []byte(line(0, 200))
	for range 1000 {
		w.Write(p)
	}
	// 100 Writes a run, some batches each: AllocsPerRun rounds down, and
	// would hide one allocation a batch in a run of one Write.
	if n := testing.AllocsPerRun(100, func() {
		for range 100 {
			w.Write(p)
		}
	}); n != 0 {
		t.Errorf("%v allocations in 100 Writes, want 0", n)
	}
}
