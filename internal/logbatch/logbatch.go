package logbatch

import (
	"io"
	"sync"
	"time"
)

// DefaultFlush is the gatehouse command's -log-flush default: a line is
// written at most 10 ms after it is logged, too soon for a reader to notice,
// and at 30,000 requests a second some 300 lines share a write.
const DefaultFlush = 10 * time.Millisecond

// defaultMaxPending is Config.MaxPending's default: 256 KiB, some 1,300
// request log lines, 40 ms of them at 30,000 requests a second.
const defaultMaxPending = 256 << 10

// Config sets a Writer's delay and bound. Its zero value batches nothing:
// each Write goes straight to the output.
type Config struct {
	// Flush is the most a line waits in the Writer before it is written:
	// the first Write into an empty buffer starts a timer of this length,
	// and when it fires everything held is written to the output in one
	// Write. Zero or less means no batching: each Write goes straight to
	// the output. The gatehouse command's default is 10 ms.
	Flush time.Duration

	// MaxPending bounds the bytes held; zero or less means 256 KiB. Once
	// half of it is held it is written without waiting for the timer. A
	// Write that would take the bytes held above MaxPending waits until the
	// flusher has taken them, so a writer faster than the output is slowed
	// to its pace and nothing is dropped; a single Write larger than
	// MaxPending goes straight to the output, after what is held.
	MaxPending int

	// After starts the Flush timer: it returns a channel that receives once
	// d has passed, as time.After does. Nil means one time.Timer, reset
	// each time it is started. Tests give a function that returns a channel
	// of their own, to fire the timer when they choose.
	After func(d time.Duration) <-chan time.Time
}

// withDefaults fills Config's defaults, in this one place.
func (c Config) withDefaults() Config {
	if c.MaxPending <= 0 {
		c.MaxPending = defaultMaxPending
	}
	return c
}

// Writer is an io.Writer that holds what is written to it for up to
// Config.Flush and then writes it all to its output in one Write. Each Write
// is kept whole, and Writes reach the output in the order they were accepted:
// a Write that returned before another began is written before it. Out's
// errors do not fail a Write that was held (the line was accepted): Flush and
// Close return them. A Write that goes straight to the output (no batching,
// after Close, or larger than MaxPending) returns the output's own result.
//
// New starts one goroutine, which Close stops; Close also writes what is
// held. A Writer is safe for concurrent use; its output need not be, as the
// Writer makes one Write to it at a time.
type Writer struct {
	out io.Writer
	max int

	arm  chan struct{} // the first bytes went into an empty buffer: start the timer
	kick chan struct{} // half full, or a Write waits for room: write now
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the flusher has returned

	mu      sync.Mutex
	room    sync.Cond // on mu; broadcast when the pending bytes are taken
	pending []byte
	direct  bool // Writes go straight to out: Flush was zero, or Close was called
	waiting int  // Writes waiting for room, which the tests observe

	// outMu is held around each out.Write and taken while mu is held, so
	// that out receives the bytes in the order mu accepted them.
	outMu sync.Mutex
	err   error // on outMu: out's first error since the last Flush or Close
}

// New returns a Writer over out with cfg's delay and bound, and starts its
// flusher unless cfg.Flush is zero or less. Close it to write what it holds
// and stop the flusher.
func New(out io.Writer, cfg Config) *Writer {
	cfg = cfg.withDefaults()
	w := &Writer{
		out:  out,
		max:  cfg.MaxPending,
		arm:  make(chan struct{}, 1),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	w.room.L = &w.mu
	if cfg.Flush <= 0 {
		w.direct = true
		close(w.done)
		return w
	}
	go w.run(cfg.Flush, cfg.After)
	return w
}

// Write holds a copy of p to be written within Config.Flush and returns
// len(p), nil. It waits while the bytes held would exceed MaxPending. It
// writes p straight to the output, and returns the output's result, when
// there is no batching, after Close, or when p alone is larger than
// MaxPending (after what is held, so the order is kept).
func (w *Writer) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.mu.Lock()
	for !w.direct && len(p) <= w.max && len(w.pending)+len(p) > w.max {
		signal(w.kick)
		w.waiting++
		w.room.Wait()
		w.waiting--
	}
	if w.direct || len(p) > w.max {
		w.outMu.Lock()
		w.writePending()
		w.mu.Unlock()
		n, err := w.out.Write(p)
		w.outMu.Unlock()
		return n, err
	}
	if len(w.pending) == 0 {
		signal(w.arm)
	}
	w.pending = append(w.pending, p...)
	if 2*len(w.pending) >= w.max {
		signal(w.kick)
	}
	w.mu.Unlock()
	return len(p), nil
}

// Flush writes what is held now, and returns the first error the output
// gave since the last Flush or Close.
func (w *Writer) Flush() error {
	w.mu.Lock()
	w.outMu.Lock()
	w.writePending()
	w.mu.Unlock()
	err := w.err
	w.err = nil
	w.outMu.Unlock()
	return err
}

// Close writes what is held, stops the flusher and waits for it to end, and
// returns the first error the output gave since the last Flush. Later Writes
// go straight to the output, so that lines logged while a program shuts down
// are not lost. Closing a closed Writer does nothing and returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.direct {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.outMu.Lock()
	w.writePending()
	w.direct = true
	w.room.Broadcast()
	w.mu.Unlock()
	err := w.err
	w.err = nil
	w.outMu.Unlock()
	close(w.stop)
	<-w.done
	return err
}

// run is the flusher: it writes what is held when the timer fires, or at
// once when kicked, until Close.
func (w *Writer) run(flush time.Duration, after func(time.Duration) <-chan time.Time) {
	defer close(w.done)
	if after == nil {
		t := time.NewTimer(flush)
		t.Stop()
		defer t.Stop()
		// Since Go 1.23 Reset discards a value the timer sent and no one
		// received, so a timer left running by a kick cannot fire early.
		after = func(d time.Duration) <-chan time.Time { t.Reset(d); return t.C }
	}
	var batch []byte
	for {
		select {
		case <-w.arm:
			select {
			case <-after(flush):
			case <-w.kick:
			case <-w.stop:
				return // Close wrote what was held
			}
		case <-w.kick:
		case <-w.stop:
			return
		}
		batch = w.swap(batch)
	}
}

// swap takes the pending bytes, gives the writers batch (written, the
// flusher's own) to fill instead, and writes what it took to out outside mu,
// so that Writes go on meanwhile. It returns the buffer it wrote.
func (w *Writer) swap(batch []byte) []byte {
	w.mu.Lock()
	batch, w.pending = w.pending, batch[:0]
	w.taken()
	w.outMu.Lock()
	w.mu.Unlock()
	if len(batch) > 0 {
		w.writeOut(batch)
	}
	w.outMu.Unlock()
	return batch
}

// writePending writes what is held to out; mu and outMu are held.
func (w *Writer) writePending() {
	if len(w.pending) == 0 {
		return
	}
	w.writeOut(w.pending)
	w.pending = w.pending[:0]
	w.taken()
}

// taken is told, with mu held, that the pending bytes were taken: a signal
// sent for them is void (the next Write into the empty buffer sends its own),
// and Writes waiting for room may go on.
func (w *Writer) taken() {
	drain(w.arm)
	drain(w.kick)
	w.room.Broadcast()
}

// writeOut writes b to out and keeps out's first error; outMu is held.
func (w *Writer) writeOut(b []byte) {
	if _, err := w.out.Write(b); err != nil && w.err == nil {
		w.err = err
	}
}

// signal sends on c, a channel of capacity 1, unless a signal is already there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// drain takes the signal on c, if there is one.
func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}
