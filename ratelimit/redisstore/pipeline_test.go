package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/internal/testrand"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/internal/gcra"
	"github.com/redis/go-redis/v9"
)

// pipelineGate is a go-redis hook that records the size of each pipeline of
// decisions (EVALSHA or EVAL) a client sends, in decisions and in script
// calls, and, armed, holds the next one before it is written, until
// released: decisions asked meanwhile queue behind a round trip in flight,
// whatever the machine's speed.
type pipelineGate struct {
	mu      sync.Mutex
	sizes   []int // decisions
	calls   []int
	armed   atomic.Bool
	held    chan struct{} // receives when the armed pipeline is held
	release chan struct{}
}

func newPipelineGate() *pipelineGate {
	return &pipelineGate{held: make(chan struct{}), release: make(chan struct{})}
}

func (g *pipelineGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *pipelineGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (g *pipelineGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if name := cmds[0].Name(); name == "evalsha" || name == "eval" {
			decisions := 0
			for _, cmd := range cmds {
				// EVALSHA sha numkeys KEYS... ARGV...: ARGV[4] holds the ids.
				args := cmd.Args()
				decisions += len(args[3+args[2].(int)+3].(string)) / idLen
			}
			g.mu.Lock()
			g.sizes = append(g.sizes, decisions)
			g.calls = append(g.calls, len(cmds))
			g.mu.Unlock()
			if g.armed.CompareAndSwap(true, false) {
				g.held <- struct{}{}
				<-g.release
			}
		}
		return next(ctx, cmds)
	}
}

// pipelines returns the decisions of each pipeline sent so far.
func (g *pipelineGate) pipelines() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sizes)
}

// scriptCalls returns the script calls of each pipeline sent so far.
func (g *pipelineGate) scriptCalls() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// plug has s decide a charge of key "plug" in a pipeline that g holds, and
// returns once it is held, and a function that releases it and waits for
// the decision.
func (g *pipelineGate) plug(t *testing.T, s *Store) (release func()) {
	t.Helper()
	g.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := s.Take(context.Background(), ratelimit.Charge{Key: "plug", Limits: ratelimit.Limits{PerMinute: 100, PerDay: 1000}}, time.Time{})
		done <- err
	}()
	<-g.held
	return func() {
		t.Helper()
		close(g.release)
		if err := <-done; err != nil {
			t.Errorf("the plug's decision: %v", err)
		}
	}
}

// waitQueued waits until n decisions of s wait for a pipeline, as waitUntil
// waits.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	waitUntil(t, func() bool { return s.batch.queued() == n },
		func() string { return fmt.Sprintf("%d decisions queued, want %d", s.batch.queued(), n) })
}

// waitUntil waits until cond holds, for at most exactWait (a condition, not
// a time, ends the wait), and otherwise fails t with failure's message.
func waitUntil(t *testing.T, cond func() bool, failure func() string) {
	t.Helper()
	for deadline := time.Now().Add(exactWait); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(failure())
		}
	}
}

// gatedStore is an exactStore on a client of s, with the script loaded (its
// first decision made), so that every later decision is one EVALSHA, and
// then a pipelineGate on the client.
func gatedStore(t *testing.T, s *redistest.Server, o Options) (*Store, *pipelineGate) {
	t.Helper()
	c := exactClient(t, s)
	st := exactStore(c, o)
	mustTake(t, st, "warm", ratelimit.Limits{PerMinute: 100, PerDay: 1000}, time.Time{})
	g := newPipelineGate()
	c.AddHook(g)
	return st, g
}

// pipelineCharges returns n charges of seven keys, at most idsKept of each
// (so that one pipeline may carry them all): five keys of their own and two
// of one owner, limits small enough that some are refused, costs of 1 to 3,
// an hour's further window on some. Seeded: the same every run.
func pipelineCharges(n int) []ratelimit.Charge {
	r := rand.New(rand.NewPCG(24, 1))
	hour := []ratelimit.Rate{{Period: time.Hour, Limit: 9}}
	kinds := []ratelimit.Charge{
		{Key: "a", Limits: ratelimit.Limits{PerMinute: 5, PerDay: 100}},
		{Key: "b", Limits: ratelimit.Limits{PerMinute: 100, PerDay: 1000}},
		{Key: "c", Limits: ratelimit.Limits{PerMinute: 7, PerDay: 100, More: hour}},
		{Key: "d", Limits: ratelimit.Limits{PerMinute: 3, PerDay: 4}},
		{Key: "e", Limits: ratelimit.Limits{PerMinute: 60, PerDay: 600}},
		{Key: "o1", Owner: "acme", Limits: ratelimit.Limits{PerMinute: 50, PerDay: 500}, OwnerLimits: []ratelimit.Rate{{Period: time.Hour, Limit: 8}}},
		{Key: "o2", Owner: "acme", Limits: ratelimit.Limits{PerMinute: 50, PerDay: 500, More: hour}, OwnerLimits: []ratelimit.Rate{{Period: time.Hour, Limit: 8}}},
	}
	per := make([]int, len(kinds))
	charges := make([]ratelimit.Charge, 0, n)
	for len(charges) < n {
		i := r.IntN(len(kinds))
		if per[i] == idsKept {
			continue
		}
		per[i]++
		c := kinds[i]
		c.Cost = 1 + r.IntN(3)
		charges = append(charges, c)
	}
	return charges
}

// pipelineOrder returns the indexes of charges, one pipeline's decisions in
// the order they were queued, in the order the pipeline makes them (when
// each key's charges have the same limits): by the place of the key's first
// decision, then as queued.
func pipelineOrder(charges []ratelimit.Charge) []int {
	order := make([]int, len(charges))
	firstOf := make(map[string]int)
	for i, c := range charges {
		order[i] = i
		if _, ok := firstOf[c.Key]; !ok {
			firstOf[c.Key] = i
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return firstOf[charges[a].Key] - firstOf[charges[b].Key] })
	return order
}

// TestConcurrentTakesShareRoundTrips: 40 decisions asked while a round trip
// is in flight (held by a hook, so that they all queue) go to Redis together,
// in one pipeline: two round trips for 41 decisions, as Store.RoundTrips
// counts them too, and one script call for each of the seven keys. Each
// decision, field for field, is the one a store deciding the same 40
// charges one at a time gives, in the order the pipeline makes them: a
// key's in the order they were queued, the keys in the order of their first
// decision. Two of the keys are one owner's, costs differ within a key, some
// decisions are refused; one fixed clock.
func TestConcurrentTakesShareRoundTrips(t *testing.T) {
	s := redistest.Start(t)
	clock := newFakeClock()
	batched, gate := gatedStore(t, s, Options{Now: clock.Now, Prefix: "batched"})
	sequential := exactStore(exactClient(t, s), Options{Now: clock.Now, Prefix: "sequential"})
	charges := pipelineCharges(40)

	trips := batched.RoundTrips()
	release := gate.plug(t, batched)
	got := make([]ratelimit.Decision, len(charges))
	errs := make([]error, len(charges))
	var wg sync.WaitGroup
	for i, c := range charges {
		wg.Go(func() { got[i], errs[i] = batched.Take(context.Background(), c, time.Time{}) })
		waitQueued(t, batched, i+1) // queued in the order of charges
	}
	release()
	wg.Wait()

	if p := gate.pipelines(); !slices.Equal(p, []int{1, 40}) {
		t.Errorf("pipelines of decisions sent (the plug's, ...): %v, want [1 40]", p)
	}
	if c := gate.scriptCalls(); !slices.Equal(c, []int{1, 7}) {
		t.Errorf("script calls of those pipelines: %v, want [1 7]: one a key", c)
	}
	if n := batched.RoundTrips() - trips; n != 2 {
		t.Errorf("RoundTrips grew by %d for the plug and 40 queued decisions, want 2", n)
	}
	refused := 0
	for _, i := range pipelineOrder(charges) {
		if errs[i] != nil {
			t.Fatalf("decision %d: %v", i, errs[i])
		}
		c := charges[i]
		want := mustCharge(t, sequential, c, time.Time{})
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("decision %d (%s, cost %d) in a pipeline:\n%+v\none at a time:\n%+v", i, c.Key, c.Cost, got[i], want)
		}
		if !want.Allowed {
			refused++
		}
	}
	if refused == 0 || refused == len(charges) {
		t.Errorf("%d of %d refused: the charges should see both answers", refused, len(charges))
	}
}

// TestPipelineCarriesIdsKeptOfAKey: 80 decisions of one key, queued behind a
// round trip in flight, go in three pipelines of 32, 32 and 16, each of them
// one script call: a pipeline carries at most as many decisions of a key as
// take.lua keeps ids of (its IDS, idsKept), so that go-redis retrying a whole
// pipeline charges each once (TestLostPipelineReplyChargesOnce). Decisions
// of other keys are not held back: the first pipeline carries them too.
func TestPipelineCarriesIdsKeptOfAKey(t *testing.T) {
	src := regexp.MustCompile(`local IDLEN, IDS = (\d+), (\d+)`).FindStringSubmatch(takeSource)
	if src == nil || src[1] != strconv.Itoa(idLen) || src[2] != strconv.Itoa(idsKept) || idsKept != 32 {
		t.Fatalf("take.lua keeps %v ids a key; idLen %d, idsKept %d, want 24 and 32", src, idLen, idsKept)
	}
	s := redistest.Start(t)
	st, gate := gatedStore(t, s, Options{})
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}

	release := gate.plug(t, st)
	remaining := make([]int, 80)
	var wg sync.WaitGroup
	for i := range remaining {
		wg.Go(func() { remaining[i] = mustTake(t, st, "hot", l, time.Time{}).Minute.Remaining })
		waitQueued(t, st, i+1)
	}
	for i := range 3 {
		wg.Go(func() { mustTake(t, st, "other"+strconv.Itoa(i), l, time.Time{}) })
		waitQueued(t, st, 81+i)
	}
	release()
	wg.Wait()

	if p := gate.pipelines(); !slices.Equal(p, []int{1, 35, 32, 16}) {
		t.Errorf("pipelines of decisions sent (the plug's, ...): %v, want [1 35 32 16]", p)
	}
	if c := gate.scriptCalls(); !slices.Equal(c, []int{1, 4, 1, 1}) {
		t.Errorf("script calls of those pipelines: %v, want [1 4 1 1]", c)
	}
	slices.Sort(remaining)
	for i, r := range remaining {
		if r != 20+i {
			t.Fatalf("the 80 decisions of one key left %v, want 20 to 99, each once", remaining)
		}
	}
}

// TestLostPipelineReplyChargesOnce: a proxy on a real socket drops the reply
// to a pipeline of 32 decisions of one key (idsKept, one script call) and 16
// of others, and 8 of a key allowed 5 a minute, after Redis ran them, and
// closes the connection; NewFromURL's client sends the whole pipeline
// again, and each decision is charged once: the key 32 tokens, the others
// one each, every decision allowed, but the last 3 of the small key.
func TestLostPipelineReplyChargesOnce(t *testing.T) {
	s := redistest.Start(t)
	p := newDropProxy(t, s.Addr)
	rs := exactURLStore(t, "redis://"+p.addr()+"/0", Options{Now: newFakeClock().Now})
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}
	mustTake(t, rs, "warm", l, time.Time{}) // loads the script: the pipeline is all EVALSHA
	var charges []ratelimit.Charge
	for i := range 48 {
		key := "k"
		if i%3 == 2 {
			key = "other" + strconv.Itoa(i)
		}
		charges = append(charges, ratelimit.Charge{Key: key, Limits: l})
	}
	small := ratelimit.Limits{PerMinute: 5, PerDay: 1000}
	for range 8 {
		charges = append(charges, ratelimit.Charge{Key: "small", Limits: small})
	}
	batch := make([]*call, len(charges))
	ctx, cancel := context.WithTimeout(context.Background(), exactWait)
	defer cancel()
	for i := range charges {
		batch[i] = rs.newCall(ctx, &charges[i], rs.nextID())
	}
	p.drop.Store(true)
	rs.pipeline(batch)
	if p.dropped.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.dropped.Load())
	}
	for i, cl := range batch {
		<-cl.done
		if cl.err != nil {
			t.Fatalf("decision %d: %v", i, cl.err)
		}
		want := i < len(charges)-3
		if _, _, allowed, ok := bucketsOf(cl.res, &charges[i]); !ok || allowed != want {
			t.Errorf("decision %d: reply %v, want allowed %v", i, cl.res, want)
		}
	}
	if d := mustTake(t, rs, "k", l, time.Time{}); d.Minute.Remaining != 67 {
		t.Errorf("after 32 decisions of k whose reply was lost, the next leaves %d, want 67", d.Minute.Remaining)
	}
	if d := mustTake(t, rs, "other2", l, time.Time{}); d.Minute.Remaining != 98 {
		t.Errorf("after 1 decision of other2 whose reply was lost, the next leaves %d, want 98", d.Minute.Remaining)
	}
	if d := mustCharge(t, rs, ratelimit.Charge{Key: "small", Limits: small}, time.Time{}); d.Allowed || d.RetryAfter != 12*time.Second {
		t.Errorf("after 5 of 8 decisions of small allowed, the next: %+v, want refused, Retry-After 12s", d)
	}
}

// TestPipelineLoadsTheScript: a Redis that lost the script (SCRIPT FLUSH:
// restarted, or another node) answers a pipeline of 5 decisions with
// NOSCRIPT each; the store sends them again with the script in full, in one
// more pipeline, and every decision is made once.
func TestPipelineLoadsTheScript(t *testing.T) {
	s := redistest.Start(t)
	st, gate := gatedStore(t, s, Options{})
	if err := st.client.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}
	release := gate.plug(t, st)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if d := mustTake(t, st, "k"+strconv.Itoa(i), l, time.Time{}); d.Minute.Remaining != 99 {
				t.Errorf("k%d: %d left, want 99", i, d.Minute.Remaining)
			}
		})
		waitQueued(t, st, i+1)
	}
	release()
	wg.Wait()
	// The plug's EVALSHA loads nothing: it is answered NOSCRIPT and sent
	// again as EVAL, which loads the script for the five.
	if p := gate.pipelines(); !slices.Equal(p, []int{1, 1, 5}) {
		t.Errorf("pipelines of decisions sent (the plug's and its EVAL, ...): %v, want [1 1 5]", p)
	}
	if err := st.client.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	trips := st.RoundTrips()
	var batch []*call
	ctx, cancel := context.WithTimeout(context.Background(), exactWait)
	defer cancel()
	for i := range 5 {
		batch = append(batch, st.newCall(ctx, &ratelimit.Charge{Key: "k" + strconv.Itoa(i), Limits: l}, st.nextID()))
	}
	st.pipeline(batch)
	for i, cl := range batch {
		if cl.err != nil || len(cl.res) != 6 || cl.res[0] != 1 {
			t.Errorf("k%d after SCRIPT FLUSH: %v %v, want allowed", i, cl.res, cl.err)
		}
	}
	if p := gate.pipelines(); !slices.Equal(p[len(p)-2:], []int{5, 5}) || st.RoundTrips()-trips != 2 {
		t.Errorf("pipelines %v, %d round trips; want the 5 EVALSHA then the 5 EVAL, two round trips", p, st.RoundTrips()-trips)
	}
	if d := mustTake(t, st, "k4", l, time.Time{}); d.Minute.Remaining != 97 {
		t.Errorf("k4 after its two decisions: %d left, want 97", d.Minute.Remaining)
	}
}

// TestFailingRedisFailsEveryQueuedTake: 10 requests whose decisions wait
// behind a round trip in flight when Redis goes away: the round trip fails,
// and so does the pipeline of the 10, one round trip, each with the refused
// connection's error, which the middleware's OnStoreError decides: the
// contract's 503 each, fail closed. Failures counts the 11.
func TestFailingRedisFailsEveryQueuedTake(t *testing.T) {
	s := redistest.Start(t)
	st, gate := gatedStore(t, s, Options{})
	var (
		mu   sync.Mutex
		errs []error
	)
	mw := ratelimit.Middleware(ratelimit.Config{
		Store: st,
		Key: func(r *http.Request) (ratelimit.Charge, bool) {
			return ratelimit.Charge{Key: r.URL.Path, Limits: ratelimit.Limits{PerMinute: 100, PerDay: 1000}}, true
		},
		OnStoreError: func(w http.ResponseWriter, r *http.Request, err error) bool {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return ratelimit.FailClosed(w, r, err)
		},
		Logger: quiet(),
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	gate.plug(t, st) // its release is Redis's end: the plug fails
	recs := make([]*httptest.ResponseRecorder, 10)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = httptest.NewRecorder()
		wg.Go(func() { mw.ServeHTTP(recs[i], httptest.NewRequest("POST", "/k"+strconv.Itoa(i), nil)) })
		waitQueued(t, st, i+1)
	}
	s.Stop()
	close(gate.release)
	wg.Wait()

	for i, rec := range recs {
		if rec.Code != 503 || rec.Body.String() != `{"error":"Upstream service temporarily unavailable"}`+"\n" || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("request %d: %d %q Retry-After %q; want the contract's 503", i, rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
	}
	if len(errs) != 10 {
		t.Fatalf("OnStoreError decided %d requests, want 10", len(errs))
	}
	for _, err := range errs {
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("a queued decision failed with %v; want the refused connection's error", err)
		}
	}
	if f := st.Failures(); f != 11 {
		t.Errorf("Failures() = %d, want 11: the plug and the 10", f)
	}
	if p := gate.pipelines(); !slices.Equal(p, []int{1, 10}) {
		t.Errorf("pipelines of decisions sent (the plug's, ...): %v, want [1 10]", p)
	}
}

// TestQueueIsBounded: with its bound of decisions waiting reached (4 here;
// maxQueued, 4,096, by default), a decision fails at once with
// ErrQueueFull, counted in Failures, and sends nothing; those queued are
// decided when the round trip ahead of them ends.
func TestQueueIsBounded(t *testing.T) {
	s := redistest.Start(t)
	st, gate := gatedStore(t, s, Options{})
	if b := st.batch.max; b != maxQueued || maxQueued != 4096 {
		t.Fatalf("a new store queues at most %d decisions, want maxQueued, 4096", b)
	}
	st.batch.max = 4
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}

	release := gate.plug(t, st)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { mustTake(t, st, "k", l, time.Time{}) })
		waitQueued(t, st, i+1)
	}
	_, err := st.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: l}, time.Time{})
	if !errors.Is(err, ErrQueueFull) {
		t.Errorf("a fifth decision waiting: %v, want ErrQueueFull", err)
	}
	if f := st.Failures(); f != 1 {
		t.Errorf("Failures() = %d, want 1", f)
	}
	release()
	wg.Wait()
	if d := mustTake(t, st, "k", l, time.Time{}); d.Minute.Remaining != 95 {
		t.Errorf("after the 4 queued decisions of k, the next leaves %d, want 95: the refused one took nothing", d.Minute.Remaining)
	}
	if p := gate.pipelines(); !slices.Equal(p, []int{1, 4, 1}) {
		t.Errorf("pipelines of decisions sent: %v, want [1 4 1]", p)
	}
	if c := gate.scriptCalls(); !slices.Equal(c, []int{1, 1, 1}) {
		t.Errorf("script calls of those pipelines: %v, want [1 1 1]: the 4 of one key in one", c)
	}
}

// TestCallerGoneLeavesTheQueue: a caller that gives up (its context
// cancelled) while its decision waits for a pipeline gets its context's
// error at once, and its decision is not sent: of three queued decisions of
// a key, two go to Redis and are charged.
func TestCallerGoneLeavesTheQueue(t *testing.T) {
	s := redistest.Start(t)
	st, gate := gatedStore(t, s, Options{})
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}

	release := gate.plug(t, st)
	var wg sync.WaitGroup
	wg.Go(func() { mustTake(t, st, "k", l, time.Time{}) })
	waitQueued(t, st, 1)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := st.Take(ctx, ratelimit.Charge{Key: "k", Limits: l}, time.Time{})
		gone <- err
	}()
	waitQueued(t, st, 2)
	wg.Go(func() { mustTake(t, st, "k", l, time.Time{}) })
	waitQueued(t, st, 3)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("a decision whose caller gave up while queued: %v, want context.Canceled", err)
	}
	release()
	wg.Wait()

	if p := gate.pipelines(); !slices.Equal(p, []int{1, 2}) {
		t.Errorf("pipelines of decisions sent: %v, want [1 2]: the cancelled decision not sent", p)
	}
	if c := gate.scriptCalls(); !slices.Equal(c, []int{1, 1}) {
		t.Errorf("script calls of those pipelines: %v, want [1 1]", c)
	}
	if d := mustTake(t, st, "k", l, time.Time{}); d.Minute.Remaining != 97 {
		t.Errorf("k after 2 decisions sent: the next leaves %d, want 97", d.Minute.Remaining)
	}
}

// TestTimeoutEndsWaitingDecisions: with Redis's round trip held in flight,
// the decision in it and three queued behind it each end with
// context.DeadlineExceeded (which is a net.Error whose Timeout is true) once
// the store's timeout has passed since it was asked, and not before;
// Failures counts the four. The three were not sent when the round trip
// ended, the next decision of their key finds it charged nothing, and once
// nothing waits the store's timer is no longer armed.
func TestTimeoutEndsWaitingDecisions(t *testing.T) {
	const timeout = 150 * time.Millisecond
	s := redistest.Start(t)
	c := exactClient(t, s)
	mustTake(t, exactStore(c, Options{}), "warm", ratelimit.Limits{PerMinute: 100, PerDay: 1000}, time.Time{}) // the script loaded
	st := New(c, Options{Timeout: timeout})
	gate := newPipelineGate()
	c.AddHook(gate)
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}

	type result struct {
		err  error
		took time.Duration
	}
	results := make(chan result, 4)
	take := func(key string) {
		start := time.Now()
		_, err := st.Take(context.Background(), ratelimit.Charge{Key: key, Limits: l}, time.Time{})
		results <- result{err, time.Since(start)}
	}
	gate.armed.Store(true)
	go take("plug")
	<-gate.held
	for i := range 3 {
		go take("k")
		waitQueued(t, st, i+1)
	}
	for range 4 {
		select {
		case r := <-results:
			if !errors.Is(r.err, context.DeadlineExceeded) || r.took < timeout {
				t.Errorf("a decision waiting on a held round trip: %v after %v; want context.DeadlineExceeded, after at least %v", r.err, r.took, timeout)
			}
		case <-time.After(answerWait):
			t.Fatalf("a decision waiting on a held round trip had no answer after %v; the store's timeout is %v", answerWait, timeout)
		}
	}
	if f := st.Failures(); f != 4 {
		t.Errorf("Failures() = %d, want 4", f)
	}
	close(gate.release)
	if d := mustTake(t, exactStore(c, Options{}), "k", l, time.Time{}); d.Minute.Remaining != 99 {
		t.Errorf("k after its three decisions timed out: the next leaves %d, want 99", d.Minute.Remaining)
	}
	if p := gate.pipelines(); !slices.Equal(p, []int{1, 1}) {
		t.Errorf("pipelines of decisions sent: %v, want [1 1]: the plug's and the last, the timed-out ones not sent", p)
	}
	watch := func() (armed bool, waiting int) {
		st.batch.mu.Lock()
		defer st.batch.mu.Unlock()
		return st.batch.armed, len(st.batch.waiting)
	}
	waitUntil(t, func() bool { armed, waiting := watch(); return !armed && waiting == 0 }, func() string {
		armed, waiting := watch()
		return fmt.Sprintf("the timer armed (%v) with %d calls kept, %v after the last decision", armed, waiting, exactWait)
	})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWatchKeepsOnlyWaitingDecisions: the calls the store's timer watches
// leave it once answered, so that it holds no more than the decisions
// waiting and those of the round trip just ended: after 32 callers' 1,600
// decisions, at most 32 calls, whatever the timeout.
func TestWatchKeepsOnlyWaitingDecisions(t *testing.T) {
	s := redistest.Start(t)
	st := exactStore(exactClient(t, s), Options{})
	defer st.Close()
	l := ratelimit.Limits{PerMinute: 1_000_000, PerDay: 10_000_000}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for range 50 {
				mustTake(t, st, "k"+strconv.Itoa(i%4), l, time.Time{})
			}
		})
	}
	wg.Wait()
	st.batch.mu.Lock()
	waiting := len(st.batch.waiting)
	st.batch.mu.Unlock()
	if waiting > 32 {
		t.Errorf("the timer watches %d calls after every decision was answered, want at most 32", waiting)
	}
}

// TestCloseEndsTheSender: Close fails the decisions still queued with
// ErrClosed at once, returns once the round trip in flight has ended (that
// decision is made), leaves no sender running, and every later decision
// fails with ErrClosed without a round trip. A client the store did not
// make stays open.
func TestCloseEndsTheSender(t *testing.T) {
	s := redistest.Start(t)
	st, gate := gatedStore(t, s, Options{})
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}

	release := gate.plug(t, st)
	queued := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := st.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: l}, time.Time{})
			queued <- err
		}()
		waitQueued(t, st, i+1)
	}
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	for range 2 {
		if err := <-queued; !errors.Is(err, ErrClosed) {
			t.Errorf("a decision queued at Close: %v, want ErrClosed", err)
		}
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a round trip in flight", err)
	default:
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	st.batch.mu.Lock()
	sending := st.batch.sending
	st.batch.mu.Unlock()
	if sending {
		t.Error("a sender runs after Close returned")
	}
	trips := st.RoundTrips()
	if _, err := st.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: l}, time.Time{}); !errors.Is(err, ErrClosed) {
		t.Errorf("a decision after Close: %v, want ErrClosed", err)
	}
	if st.RoundTrips() != trips {
		t.Error("a decision after Close made a round trip")
	}
	if err := st.client.Ping(context.Background()).Err(); err != nil {
		t.Errorf("the caller's client after Close: %v, want it open", err)
	}
	if p := gate.pipelines(); !slices.Equal(p, []int{1}) {
		t.Errorf("pipelines of decisions sent: %v, want [1]: the plug's", p)
	}
}

var _ redis.Hook = (*pipelineGate)(nil)

// BenchmarkPipelinedDecisions: 32 goroutines deciding at once on a local
// Redis, on one key (at most 8 decisions of it a pipeline) and on 1,000
// keys, with the round trips each decision made (trips/op).
func BenchmarkPipelinedDecisions(b *testing.B) {
	s := redistest.Start(b)
	for _, keys := range []int{1, 1000} {
		b.Run(strconv.Itoa(keys)+"keys", func(b *testing.B) {
			st := New(redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true}), Options{Timeout: time.Second})
			defer st.Close()
			l := ratelimit.Limits{PerMinute: 1_000_000_000, PerDay: 1_000_000_000}
			var n atomic.Int64
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			trips := st.RoundTrips()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c := ratelimit.Charge{Key: "k" + strconv.Itoa(int(n.Add(1))%keys), Limits: l}
					if _, err := st.Take(context.Background(), c, time.Time{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(st.RoundTrips()-trips)/float64(b.N), "trips/op")
		})
	}
}

// TestRandomPipelinesAgreeWithMemoryStore replays random histories of
// pipelines of 1 to 40 decisions of three keys, two of them sharing an
// owner's bucket, with further windows and costs of 1 to 7 mixed within a
// key, limits changing between pipelines, on this store (each pipeline sent
// whole, so that a key's decisions are one script call) and on
// ratelimit.MemoryStore (one at a time, in the pipeline's order: by the
// place of the key's first decision, then as they came): every decision is
// the same, to the millisecond. Seeded: replay a failure with -seed=N or
// GATEHOUSE_SEED=N.
func TestRandomPipelinesAgreeWithMemoryStore(t *testing.T) {
	s := redistest.Start(t)
	r := testrand.New(t)
	clock := newFakeClock()
	rs := exactStore(exactClient(t, s), Options{Now: clock.Now, NoLocalRefusals: true})
	histories, steps := 60, 12
	if testing.Short() {
		histories = 15
	}
	ctx, cancel := context.WithTimeout(context.Background(), exactWait)
	defer cancel()
	seen := map[string]int{}
	for h := range histories {
		ms := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
		owner := "owner" + strconv.Itoa(h)
		ownerLimits := randomRates(r, 2, false)
		charges := make([]ratelimit.Charge, 3)
		for i := range charges {
			charges[i] = ratelimit.Charge{Key: "p" + strconv.Itoa(h) + "k" + strconv.Itoa(i),
				Limits: ratelimit.Limits{PerMinute: 1 + r.IntN(40), PerDay: 1 + r.IntN(400), More: randomRates(r, 2, true)}}
			if i < 2 && len(ownerLimits) > 0 {
				charges[i].Owner, charges[i].OwnerLimits = owner, ownerLimits
			}
		}
		clock.Set(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(time.Hour)))))
		for range steps {
			switch k := r.IntN(6); k {
			case 0:
				c := &charges[r.IntN(3)]
				c.Limits.PerMinute = 1 + r.IntN(40)
				c.Limits.More = randomRates(r, 2, true)
			case 1, 2:
				clock.Advance(time.Duration(r.Int64N(int64(20 * time.Second))))
			}
			pipeline := make([]ratelimit.Charge, 1+r.IntN(40))
			batch := make([]*call, len(pipeline))
			perKey := map[string]int{}
			for i := range pipeline {
				c := charges[r.IntN(3)]
				for perKey[c.Key] == idsKept { // as Store.Take's queue allows
					c = charges[r.IntN(3)]
				}
				perKey[c.Key]++
				c.Cost = 1 + r.IntN(7)
				pipeline[i] = c
				batch[i] = rs.newCall(ctx, &pipeline[i], rs.nextID())
			}
			rs.pipeline(batch)
			for _, i := range pipelineOrder(pipeline) {
				c, cl := pipeline[i], batch[i]
				if cl.err != nil {
					t.Fatalf("history %d, decision %d of %d: %v", h, i, len(pipeline), cl.err)
				}
				want, err := ms.Take(ctx, c, clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				var got ratelimit.Decision
				b, ob, allowed, ok := bucketsOf(cl.res, &c)
				if !ok {
					t.Fatalf("history %d, decision %d: reply %v", h, i, cl.res)
				}
				obp := &ob
				if !owned(&c) {
					obp = nil
				}
				gcra.Decide(&got, &b, allowed, c.Cost, obp)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("history %d, decision %d of %d at %v, %+v:\n redis  %+v\n memory %+v", h, i, len(pipeline), clock.Now(), c, got, want)
				}
				switch {
				case !want.Allowed && perKey[c.Key] > 1:
					seen["refusal in a call of several"]++
				case want.Allowed && perKey[c.Key] > 1:
					seen["allowed in a call of several"]++
				}
				if owned(&c) && perKey[charges[0].Key] > 0 && perKey[charges[1].Key] > 0 {
					seen["two keys of an owner in one pipeline"]++
				}
			}
		}
	}
	for _, kind := range []string{"refusal in a call of several", "allowed in a call of several", "two keys of an owner in one pipeline"} {
		if seen[kind] == 0 {
			t.Errorf("no %s in %d histories: the test did not cover it", kind, histories)
		}
	}
	t.Logf("%d histories of %d pipelines: %v", histories, steps, seen)
}
