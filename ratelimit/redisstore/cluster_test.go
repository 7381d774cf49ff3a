package redisstore

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

// TestClusterReplicasShareLimits is TestReplicasShareLimits on a Redis
// Cluster of three masters: each of the three stacks has its own
// ClusterClient, and 1,000 concurrent requests of a 100/min key let exactly
// 100 through.
func TestClusterReplicasShareLimits(t *testing.T) {
	c := redistest.StartCluster(t)
	replicasShareLimits(t, func(o Options) *Store { return clusterStore(t, c, o) })
}

// clusterStore is an exactStore with options o on a ClusterClient of its own
// to c, as patient as an exactClient, with 50 connections a node (the tests
// send up to 1,000 requests at once) whose replies are bounded (BoundReplies:
// the cluster's own replies, COMMAND and CLUSTER SLOTS, fit), closed when the
// test ends.
func clusterStore(t *testing.T, c *redistest.Cluster, o Options) *Store {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, PoolSize: 50, Dialer: BoundReplies(nil, nil), ContextTimeoutEnabled: true,
		DialTimeout: exactWait, ReadTimeout: exactWait, WriteTimeout: exactWait, PoolTimeout: exactWait})
	t.Cleanup(func() { rdb.Close() })
	return exactStore(rdb, o)
}

// nodeClient is a client of the one Redis at addr (a cluster's node),
// closed when the test ends.
func nodeClient(t *testing.T, addr string) *redis.Client {
	node := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { node.Close() })
	return node
}

// replicasShareLimits runs three middleware stacks, each on its own store
// from newStore (an exactStore, with a fixed clock), on one key of 100 per minute and 10,000 per day, at one
// instant, and sends 1,000 concurrent requests round-robin across them.
// Exactly 100 pass, each with its own X-RateLimit-Remaining (99 down to 0)
// and Daily-Remaining (9999 down to 9900), so no two decisions saw the same
// bucket; the other 900 are the contract's 429, status, headers and body
// exactly.
func replicasShareLimits(t *testing.T, newStore func(Options) *Store) {
	t.Helper()
	fixed := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var handlers []http.Handler
	for range 3 {
		store := newStore(Options{Now: func() time.Time { return fixed }})
		handlers = append(handlers, ratelimit.Middleware(ratelimit.Config{
			Store: store,
			Key: func(r *http.Request) (ratelimit.Charge, bool) {
				return ratelimit.Charge{Key: "shared-key", Limits: ratelimit.Limits{PerMinute: 100, PerDay: 10000}}, true
			},
		})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	}
	const n = 1000
	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			recs[i] = httptest.NewRecorder()
			handlers[i%3].ServeHTTP(recs[i], httptest.NewRequest("POST", "/", nil))
		})
	}
	close(start)
	wg.Wait()

	// 60,000 ms / 100 = 600 ms until the next token: Retry-After 1.
	const body = `{"error":"Rate limit exceeded"}` + "\n"
	want429 := http.Header{
		"Content-Type":                {"application/json"},
		"Content-Length":              {strconv.Itoa(len(body))},
		"X-Content-Type-Options":      {"nosniff"},
		"Cache-Control":               {"no-store"},
		"Retry-After":                 {"1"},
		"X-Ratelimit-Limit":           {"100"},
		"X-Ratelimit-Remaining":       {"0"},
		"X-Ratelimit-Daily-Limit":     {"10000"},
		"X-Ratelimit-Daily-Remaining": {"9900"},
	}
	var passed, limited int
	var remaining, daily []int
	for i, rec := range recs {
		res := rec.Result()
		b, _ := io.ReadAll(res.Body)
		switch res.StatusCode {
		case 200:
			passed++
			if lim, dlim := res.Header.Get("X-RateLimit-Limit"), res.Header.Get("X-RateLimit-Daily-Limit"); lim != "100" || dlim != "10000" {
				t.Fatalf("request %d: 200 with limits %q and %q, want 100 and 10000", i, lim, dlim)
			}
			r, _ := strconv.Atoi(res.Header.Get("X-RateLimit-Remaining"))
			d, _ := strconv.Atoi(res.Header.Get("X-RateLimit-Daily-Remaining"))
			remaining, daily = append(remaining, r), append(daily, d)
		case 429:
			limited++
			if string(b) != body || !reflect.DeepEqual(res.Header, want429) {
				t.Fatalf("request %d: 429 with body %s and headers %v; want %s and %v", i, b, res.Header, body, want429)
			}
		default:
			t.Fatalf("request %d: status %d, body %s", i, res.StatusCode, b)
		}
	}
	if passed != 100 || limited != 900 {
		t.Fatalf("passed %d, limited %d; want 100, 900", passed, limited)
	}
	slices.Sort(remaining)
	slices.Sort(daily)
	for i := range 100 {
		if remaining[i] != i || daily[i] != 9900+i {
			t.Fatalf("the passed requests' Remaining %v and Daily-Remaining %v; want 0 to 99 and 9900 to 9999, each once", remaining, daily)
		}
	}
}

// TestClusterKeysOnEveryMaster: on a cluster, on Redis's own clock (TIME),
// keys whose slots are spread over all three masters each get their own
// bucket on their own master: a first Take leaves 4 of 5, a second 3, and a
// Peek sees 3, with no error from a node that does not hold the key.
func TestClusterKeysOnEveryMaster(t *testing.T) {
	c := redistest.StartCluster(t)
	store := clusterStore(t, c, Options{})
	ctx := t.Context()
	l := ratelimit.Limits{PerMinute: 5, PerDay: 100}
	const keys = 30
	for i := range keys {
		key := "key-" + strconv.Itoa(i)
		for want := 4; want >= 3; want-- {
			d, err := store.Take(ctx, ratelimit.Charge{Key: key, Limits: l}, time.Time{})
			if err != nil {
				t.Fatalf("Take %s: %v", key, err)
			}
			if !d.Allowed || d.Minute.Remaining != want || d.Day.Remaining != 95+want {
				t.Fatalf("Take %s: %+v, want allowed with %d and %d left", key, d, want, 95+want)
			}
		}
		d, err := store.Peek(ctx, ratelimit.Charge{Key: key, Limits: l}, time.Time{})
		if err != nil {
			t.Fatalf("Peek %s: %v", key, err)
		}
		if !d.Allowed || d.Minute.Remaining != 3 || d.Day.Remaining != 98 {
			t.Fatalf("Peek %s: %+v, want 3 and 98 left", key, d)
		}
	}
	var total int64
	for _, addr := range c.Addrs {
		n, err := nodeClient(t, addr).DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("master %s holds none of the %d keys", addr, keys)
		}
		total += n
	}
	if total != keys {
		t.Errorf("the masters hold %d keys in all, want %d: one hash per key", total, keys)
	}
}

// TestClusterPeekAsksTheKeysNode: on a cluster, a Peek reads the clock of
// the node that holds the key, the clock its Takes run on, and asks no other
// node anything: three Peeks of one key (go-redis would send a bare TIME to
// each master in turn) leave the other masters' command counts empty.
func TestClusterPeekAsksTheKeysNode(t *testing.T) {
	c := redistest.StartCluster(t)
	store := clusterStore(t, c, Options{})
	ctx := t.Context()
	l := ratelimit.Limits{PerMinute: 5, PerDay: 100}
	mustTake(t, store, "k", l, time.Time{})
	owner := ""
	for _, addr := range c.Addrs {
		node := nodeClient(t, addr)
		if n, err := node.DBSize(ctx).Result(); err != nil {
			t.Fatal(err)
		} else if n == 1 {
			owner = addr
		}
		if err := node.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if d, err := store.Peek(ctx, ratelimit.Charge{Key: "k", Limits: l}, time.Time{}); err != nil || d.Minute.Remaining != 4 {
			t.Fatalf("Peek: %+v, %v; want 4 left", d, err)
		}
	}
	for _, addr := range c.Addrs {
		stats, err := nodeClient(t, addr).Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		asked := strings.Contains(stats, "cmdstat_time:") || strings.Contains(stats, "cmdstat_hmget:") || strings.Contains(stats, "cmdstat_evalsha:")
		if addr != owner && asked {
			t.Errorf("master %s, which does not hold the key, was asked:\n%s", addr, stats)
		}
		if addr == owner && !strings.Contains(stats, "cmdstat_time:calls=3,") {
			t.Errorf("the key's master %s did not tell the time of each Peek:\n%s", addr, stats)
		}
	}
}

// TestClusterOwnerSharedExactly: on a cluster, three stores, each with its
// own ClusterClient, take 1,000 concurrent requests of ten keys of one owner
// whose bucket allows 100 an hour (each key 1,000 a minute): exactly 100
// pass, each seeing its own owner's Remaining (99 down to 0), and the hashes
// (the owner's and those of the keys with a request passed: a refusal
// writes nothing, and a pipeline makes a key's decisions together, so some
// keys may have none) are on one master, as a script may only touch keys of
// one slot (Redis refuses it with CROSSSLOT otherwise).
func TestClusterOwnerSharedExactly(t *testing.T) {
	c := redistest.StartCluster(t)
	fixed := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var stores []*Store
	for range 3 {
		stores = append(stores, clusterStore(t, c, Options{Now: func() time.Time { return fixed }}))
	}
	const n = 1000
	owner := []ratelimit.Rate{{Limit: 100, Period: time.Hour}}
	decisions := make([]ratelimit.Decision, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ch := ratelimit.Charge{Key: "key-" + strconv.Itoa(i%10), Limits: ratelimit.Limits{PerMinute: 1000, PerDay: 100_000},
				Owner: "acme", OwnerLimits: owner}
			decisions[i], errs[i] = stores[i%3].Take(t.Context(), ch, time.Time{})
		})
	}
	close(start)
	wg.Wait()
	var remaining []int
	passedKeys := make(map[string]bool) // the keys with a bucket: those with a decision allowed
	for i, d := range decisions {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if len(d.More) != 1 || !d.More[0].Owner || d.More[0].Limit != 100 || d.More[0].Period != time.Hour {
			t.Fatalf("request %d: %+v, want the owner's hour as its one further window", i, d)
		}
		if d.Allowed {
			remaining = append(remaining, d.More[0].Remaining)
			passedKeys["key-"+strconv.Itoa(i%10)] = true
		} else if d.More[0].Remaining != 0 || d.RetryAfter != 36*time.Second {
			t.Fatalf("refused request %d: %+v, want the owner's hour at 0 and Retry-After 36s", i, d)
		}
	}
	slices.Sort(remaining)
	if len(remaining) != 100 || remaining[0] != 0 || remaining[99] != 99 || len(slices.Compact(remaining)) != 100 {
		t.Fatalf("%d passed with the owner's Remaining %v; want 100, 0 to 99 each once", len(remaining), remaining)
	}
	var holders int
	for _, addr := range c.Addrs {
		size, err := nodeClient(t, addr).DBSize(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			holders++
			if want := int64(1 + len(passedKeys)); size != want {
				t.Errorf("master %s holds %d keys, want the owner's and its %d keys with a pass", addr, size, len(passedKeys))
			}
		}
	}
	if holders != 1 {
		t.Errorf("%d masters hold the owner's keys, want one", holders)
	}
}

// TestClusterPipelineGoesToEveryMaster: on a cluster, 30 decisions of keys
// spread over the three masters, queued behind a round trip in flight, go
// in one pipeline, which go-redis splits by node: each master gets one
// pipeline of its keys' decisions, and each decision is its key's second
// (3 of 5 left).
func TestClusterPipelineGoesToEveryMaster(t *testing.T) {
	c := redistest.StartCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, PoolSize: 50, Dialer: BoundReplies(nil, nil), ContextTimeoutEnabled: true,
		DialTimeout: exactWait, ReadTimeout: exactWait, WriteTimeout: exactWait, PoolTimeout: exactWait})
	t.Cleanup(func() { rdb.Close() })
	var (
		mu     sync.Mutex
		byNode = map[string][]int{} // the sizes of the pipelines of decisions each master got, but the plug's
	)
	rdb.OnNewNode(func(node *redis.Client) {
		addr := node.Options().Addr
		node.AddHook(pipelineHook(func(cmds []redis.Cmder) {
			if cmds[0].Name() == "evalsha" && !strings.Contains(cmds[0].String(), ":plug}") {
				mu.Lock()
				byNode[addr] = append(byNode[addr], len(cmds))
				mu.Unlock()
			}
		}))
	})
	store := exactStore(rdb, Options{})
	l := ratelimit.Limits{PerMinute: 5, PerDay: 100}
	const keys = 30
	for i := range keys { // loads the script on every master
		mustTake(t, store, "key-"+strconv.Itoa(i), l, time.Time{})
	}
	mu.Lock()
	clear(byNode)
	mu.Unlock()
	gate := newPipelineGate()
	rdb.AddHook(gate)

	release := gate.plug(t, store)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			key := "key-" + strconv.Itoa(i)
			if d := mustTake(t, store, key, l, time.Time{}); !d.Allowed || d.Minute.Remaining != 3 {
				t.Errorf("%s: %+v, want allowed with 3 left", key, d)
			}
		})
		waitQueued(t, store, i+1)
	}
	release()
	wg.Wait()

	if p := gate.pipelines(); !slices.Equal(p, []int{1, keys}) {
		t.Errorf("pipelines of decisions sent (the plug's, ...): %v, want [1 %d]", p, keys)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, addr := range c.Addrs {
		sizes := byNode[addr]
		if len(sizes) != 1 {
			t.Errorf("master %s got pipelines of decisions %v, want one", addr, sizes)
		}
		for _, n := range sizes {
			total += n
		}
	}
	if total != keys {
		t.Errorf("the masters got %d decisions in all, want %d", total, keys)
	}
}

// pipelineHook is a go-redis hook that shows f each pipeline before sending it.
type pipelineHook func(cmds []redis.Cmder)

func (h pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h(cmds)
		return next(ctx, cmds)
	}
}
