package redisstore

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

// Decisions that wait for Redis at the same moment share a round trip: a
// decision that finds the store idle is sent at once, in a pipeline of its
// own; those that arrive while a pipeline is in flight queue, and the next
// pipeline carries all of them (natural batching: no timer, so an idle store
// adds no wait). go-redis sends a pipeline as one write and reads its
// replies in order; a Cluster client splits it by node and sends each part
// to its node at once.

// maxQueued bounds the decisions waiting for a pipeline: beyond it, a
// decision fails at once with ErrQueueFull rather than waiting for Redis to
// catch up. Each holds its keys and arguments, a few hundred bytes.
const maxQueued = 4096

// maxPipeline bounds the decisions of one pipeline, so that one write and
// one run of Redis's event loop stay short.
const maxPipeline = 256

// idsKept is how many ids of allowed decisions take.lua keeps in a key's
// hash (its IDS). go-redis retries a pipeline whose reply was lost as a
// whole, so a pipeline carries at most this many decisions of one key:
// each of them, run again, still finds its id, and is charged once. Each
// id is idLen characters (nextID).
const (
	idsKept = 32
	idLen   = 24
)

// ErrQueueFull is the error of a decision that found maxQueued decisions
// already waiting for Redis (4,096): Redis, or the way to it, is slower than
// the requests come, and the decision is left to the middleware's
// OnStoreError at once.
var ErrQueueFull = errors.New("redisstore: too many decisions waiting for Redis")

// ErrClosed is the error of a decision asked of a Store after Close, or
// still waiting for its pipeline when Close was called.
var ErrClosed = errors.New("redisstore: store closed")

// call is one decision waiting for, or in, a pipeline: what take.lua needs
// of it, and its reply.
type call struct {
	ctx         context.Context // the caller's
	expires     time.Time       // when the store's timeout ends it (the batcher's watch)
	deadline    time.Time       // ctx's, or expires if sooner: its round trip's
	key         string          // the key's bucket (Store.names)
	owner       string          // the owner's bucket, "" for none
	limits      ratelimit.Limits
	ownerLimits []ratelimit.Rate // with an owner's bucket
	override    string           // "0": Redis's TIME; else Options.Now's Unix ms
	id          string           // the decision's (nextID)
	cost        int              // at least 1
	res         []int64          // the script's reply for this decision, or
	err         error            // its error; both set by answer, before done is closed
	answered    atomic.Bool      // answer's: the first answer is the call's
	done        chan struct{}
}

// answer gives cl its reply, res or err, and wakes its caller, unless cl
// has had its answer already: the sender's, the batcher's watch's (the
// store's timeout) or Close's, whichever comes first.
func (cl *call) answer(res []int64, err error) {
	if cl.answered.CompareAndSwap(false, true) {
		cl.res, cl.err = res, err
		close(cl.done)
	}
}

// newCall returns the call of c under the decision id, with slices of its
// own: a caller that gives up may change c's while the call waits.
func (s *Store) newCall(ctx context.Context, c *ratelimit.Charge, id string) *call {
	cl := &call{ctx: ctx, limits: cloneLimits(c.Limits), override: "0", id: id, cost: max(c.Cost, 1), done: make(chan struct{})}
	cl.key, cl.owner = s.names(c)
	if cl.owner != "" {
		cl.ownerLimits = slices.Clone(c.OwnerLimits)
	}
	if s.now != nil {
		cl.override = strconv.FormatInt(s.now().UnixMilli(), 10)
	}
	cl.deadline, _ = ctx.Deadline()
	return cl
}

// batcher queues the decisions of a Store for its pipelines, and ends each
// that its timeout runs out on.
type batcher struct {
	mu      sync.Mutex
	queue   []*call // at most max
	max     int     // maxQueued; tests set it lower
	sending bool    // the sender goroutine runs
	closed  bool
	idle    chan struct{} // closed when the sender ends, for Close; nil while none runs
	timeout time.Duration // the store's

	// The watch: one timer for every decision's timeout, where a
	// context.WithTimeout a decision cost a timer, a context and its
	// channel (what that buys is in docs/performance.md). waiting holds the
	// calls asked and not yet answered, in the order asked, which is the
	// order their timeouts end in (each is asked+timeout); answered ones
	// leave it from its front. The timer is armed while any waits, at or
	// before the first one's end.
	waiting []*call
	timer   *time.Timer
	armed   bool
}

// run has Redis decide cl: it queues cl, starts the sender if none runs,
// and waits for the reply, for the store's timeout (the batcher's watch
// answers cl then) or for cl.ctx to end, whichever comes first. A caller
// that gives up or times out is no longer waited for: if its pipeline was
// not sent yet, it is dropped from it; if it was, the decision may still be
// made.
func (s *Store) run(cl *call) ([]int64, error) {
	b := &s.batch
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return nil, ErrClosed
	case len(b.queue) >= b.max:
		b.mu.Unlock()
		return nil, ErrQueueFull
	}
	b.queue = append(b.queue, cl)
	b.watchLocked(cl)
	start := !b.sending
	if start {
		b.sending = true
		b.idle = make(chan struct{})
	}
	b.mu.Unlock()
	if start {
		go s.send()
	}
	select {
	case <-cl.done:
		return cl.res, cl.err
	case <-cl.ctx.Done():
		return nil, cl.ctx.Err()
	}
}

// watchLocked starts the store's timeout of cl, which run has just
// queued: it is read from the clock under b.mu, so that the calls of
// waiting are in the order their timeouts end; b.mu is held.
func (b *batcher) watchLocked(cl *call) {
	now := time.Now()
	cl.expires = now.Add(b.timeout)
	if cl.deadline.IsZero() || cl.expires.Before(cl.deadline) {
		cl.deadline = cl.expires
	}
	b.forgetAnsweredLocked()
	b.waiting = append(b.waiting, cl)
	if b.armed {
		return
	}
	b.armed = true // cl is the only call waiting
	if b.timer == nil {
		b.timer = time.AfterFunc(b.timeout, b.expire)
	} else {
		b.timer.Reset(b.timeout)
	}
}

// forgetAnsweredLocked drops the answered calls from the front of waiting;
// b.mu is held. A call is answered when its round trip ends, which is in
// the order they were asked, but for a caller gone or a call timed out: so
// waiting holds little more than the calls queued and in flight.
func (b *batcher) forgetAnsweredLocked() {
	i := 0
	for i < len(b.waiting) && b.waiting[i].answered.Load() {
		b.waiting[i] = nil
		i++
	}
	b.waiting = b.waiting[i:]
}

// expire is the watch's timer: it fails every call whose timeout has ended
// with context.DeadlineExceeded, as the context.WithTimeout of each would,
// and arms the timer again at the end of the first call still unanswered,
// if any.
func (b *batcher) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.forgetAnsweredLocked()
	for len(b.waiting) > 0 && !now.Before(b.waiting[0].expires) {
		b.waiting[0].answer(nil, context.DeadlineExceeded)
		b.forgetAnsweredLocked()
	}
	if len(b.waiting) == 0 {
		b.armed = false
		return
	}
	b.timer.Reset(b.waiting[0].expires.Sub(now))
}

// send is the sender: while decisions are queued, it sends them in
// pipelines, one at a time (four senders, each with a pipeline in flight,
// measured no faster: load -compare -redis-compare in benchmarks/), and it
// ends when none is left (or the store is closed). Each round trip ends by the latest deadline of its decisions, so
// the sender runs only while some caller waits, and at most a timeout
// longer.
func (s *Store) send() {
	var (
		batch  []*call
		perKey = make(map[string]int)
	)
	for {
		batch = s.batch.next(batch[:0], perKey)
		if len(batch) == 0 {
			return
		}
		s.pipeline(batch)
		clear(batch) // nothing of a batch outlives its round trip here
		// Let the callers just answered run before the queue is taken:
		// each may be about to ask its next decision, which then goes with
		// those already queued. Taking the queue at once, two callers took
		// turns, a round trip each. What that buys is in docs/performance.md.
		runtime.Gosched()
	}
}

// next moves the next pipeline's decisions from the queue to dst, in the
// order they came: up to maxPipeline, at most idsKept of one key (the others
// stay queued, in order, for a later pipeline), none whose caller has gone.
// With nothing to send, it marks the sender ended and returns dst empty.
func (b *batcher) next(dst []*call, perKey map[string]int) []*call {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(perKey)
	keep := b.queue[:0]
	for _, cl := range b.queue {
		switch {
		case cl.answered.Load(): // timed out
		case cl.ctx.Err() != nil: // its caller has its error already
			cl.answer(nil, cl.ctx.Err()) // for the watch
		case len(dst) < maxPipeline && perKey[cl.key] < idsKept:
			perKey[cl.key]++
			dst = append(dst, cl)
		default:
			keep = append(keep, cl)
		}
	}
	clear(b.queue[len(keep):])
	b.queue = keep
	if len(dst) == 0 || b.closed {
		for _, cl := range dst {
			cl.answer(nil, ErrClosed)
		}
		b.sending = false
		close(b.idle)
		b.idle = nil
		return dst[:0]
	}
	return dst
}

// pipeline sends batch in one pipeline and hands each decision its reply.
// Its decisions of one key under the same limits are one script call (see
// groupCalls), made in the order they were queued, at the place of the
// first of them.
// The pipeline's context has no caller's cancellation (a caller that goes
// away does not undo the others' decisions) and ends at the latest of
// their deadlines. A script Redis does not have yet (NOSCRIPT: a new or
// restarted Redis, another node of a Cluster) is sent again in full, in a
// second pipeline of those calls alone, as redis.Script.Run does.
func (s *Store) pipeline(batch []*call) {
	var deadline time.Time
	for _, cl := range batch {
		if cl.deadline.After(deadline) {
			deadline = cl.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	groups := groupCalls(batch)
	cmds := make([]*redis.IntSliceCmd, len(groups))
	keys := make([][]string, len(groups))
	args := make([][]any, len(groups))
	pipe := s.client.Pipeline()
	for i, g := range groups {
		keys[i], args[i] = scriptArgs(g)
		cmds[i] = takeCmd(ctx, "evalsha", s.script.Hash(), keys[i], args[i])
		pipe.Process(ctx, cmds[i])
	}
	_, err := pipe.Exec(ctx)
	stamp(err, cmds)
	var again redis.Pipeliner
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			if again == nil {
				again = s.client.Pipeline()
			}
			cmds[i] = takeCmd(ctx, "eval", takeSource, keys[i], args[i])
			again.Process(ctx, cmds[i])
		}
	}
	s.trips.Add(1)
	if again != nil {
		_, err = again.Exec(ctx)
		stamp(err, cmds)
		s.trips.Add(1)
	}
	for i, g := range groups {
		res, err := cmds[i].Result()
		// Each decision's reply is its equal part of the call's, in order;
		// a reply that does not divide so is given whole to each, whose
		// check (bucketsOf) refuses it.
		n := len(res) / len(g)
		if n*len(g) != len(res) {
			n = 0
		}
		for j, cl := range g {
			if n > 0 {
				cl.answer(res[j*n:(j+1)*n:(j+1)*n], err)
			} else {
				cl.answer(res, err)
			}
		}
	}
}

// takeCmd returns take.lua's call with keys and args, as EVALSHA with the
// script's hash or EVAL with its source (name "evalsha" or "eval", body the
// hash or the source), as go-redis's Script makes them, but read as a list
// of integers: each number of the reply goes straight into the []int64,
// where redis.Cmd keeps each in an interface value first, an allocation
// for most of them (BenchmarkPipelinedDecisions: 11 allocations a decision
// on one key instead of 15). An element that is nil reads as 0, as
// IntSliceCmd reads it; take.lua's replies have none.
func takeCmd(ctx context.Context, name, body string, keys []string, args []any) *redis.IntSliceCmd {
	all := make([]any, 0, 3+len(keys)+len(args))
	all = append(all, name, body, len(keys))
	for _, k := range keys {
		all = append(all, k)
	}
	cmd := redis.NewIntSliceCmd(ctx, append(all, args...)...)
	cmd.SetFirstKeyPos(3) // where a Cluster client finds the key's slot
	return cmd
}

// groupCalls returns batch's decisions in groups that one script call can
// make: decisions of one key (and owner) with the same limits, other than
// the decision's id and its cost, in the order they came, each group at
// the place of its first decision. A key's decision under limits other than
// its previous one's starts a group of its own.
func groupCalls(batch []*call) [][]*call {
	groups := make([][]*call, 0, len(batch))
	last := make(map[string]int, len(batch)) // a key's latest group
	for _, cl := range batch {
		if i, ok := last[cl.key]; ok && sameCall(groups[i][0], cl) {
			groups[i] = append(groups[i], cl)
			continue
		}
		last[cl.key] = len(groups)
		groups = append(groups, []*call{cl})
	}
	return groups
}

// sameCall says one script call can make the decisions a and b: the same
// buckets under the same limits (their ids and costs may differ).
func sameCall(a, b *call) bool {
	return a.key == b.key && a.owner == b.owner && a.override == b.override &&
		sameLimits(a.limits, b.limits) && slices.Equal(a.ownerLimits, b.ownerLimits)
}

// scriptArgs returns take.lua's keys and arguments for the decisions of g
// (a group of groupCalls): the key's bucket (and the owner's); the key's
// limits a minute and a day, the time ("0": Redis's TIME), every decision's
// id in order, and their cost, one number if they share it, else one per
// decision, comma-separated; then the key's further windows, and the
// owner's. A call of one token a decision, with the key's two windows alone
// and no owner, sends only the first four: the script takes its defaults
// for the rest.
func scriptArgs(g []*call) (keys []string, args []any) {
	first := g[0]
	keys = []string{first.key}
	if first.owner != "" {
		keys = append(keys, first.owner)
	}
	// ids are the decisions' one after the other; costs, only where they
	// differ, one per decision.
	ids, costs := first.id, ""
	if len(g) > 1 {
		b := make([]byte, 0, idLen*len(g))
		for _, cl := range g {
			b = append(b, cl.id...)
		}
		ids = string(b)
		if slices.ContainsFunc(g, func(cl *call) bool { return cl.cost != first.cost }) {
			var c []byte
			for i, cl := range g {
				if i > 0 {
					c = append(c, ',')
				}
				c = strconv.AppendInt(c, int64(cl.cost), 10)
			}
			costs = string(c)
		}
	}
	l := first.limits
	if costs == "" && first.cost == 1 && len(l.More) == 0 && first.owner == "" {
		return keys, []any{l.PerMinute, l.PerDay, first.override, ids}
	}
	var cost any = first.cost
	if costs != "" {
		cost = costs
	}
	args = make([]any, 0, 6+2*len(l.More)+2*len(first.ownerLimits))
	args = append(args, l.PerMinute, l.PerDay, first.override, ids, cost, len(l.More))
	args = appendRates(args, l.More)
	return keys, appendRates(args, first.ownerLimits)
}

// queued is how many decisions wait for a pipeline.
func (b *batcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// close fails every queued decision and every later one with ErrClosed, and
// returns a channel closed when the sender has ended (nil if none runs): its
// round trip in flight ends by its deadline.
func (b *batcher) close() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, cl := range b.queue {
		cl.answer(nil, ErrClosed)
	}
	clear(b.queue)
	b.queue = b.queue[:0]
	return b.idle
}

// stopWatch stops the watch's timer, for Close once the sender has ended:
// every call has its answer then.
func (b *batcher) stopWatch() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.armed = false
	clear(b.waiting)
	b.waiting = nil
}

// stamp gives the pipeline's error err to each of cmds that its Exec left
// with neither a reply nor an error of its own: go-redis sets none on the
// commands when the connection's handshake fails (a wrong password's
// WRONGPASS).
func stamp(err error, cmds []*redis.IntSliceCmd) {
	if err == nil {
		return
	}
	for _, cmd := range cmds {
		if cmd.Err() == nil && cmd.Val() == nil {
			cmd.SetErr(err)
		}
	}
}
