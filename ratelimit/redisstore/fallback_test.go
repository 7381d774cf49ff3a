package redisstore

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// TestFallbackSurvivesRedis: 16 clients keep a real HTTP server busy while
// its Redis runs, hangs (SIGSTOP), is killed and comes back on the same port,
// with ratelimit.Fallback at a quarter of each limit in front of the Redis
// store. Every answer is the limiter's 200 or 429, never a 503: Redis's
// limits (400 a minute) or a quarter of them (100); a request sent and
// answered while Redis was dead never gets Redis's, and some get the share's
// refusal; each outage lets through no more than a quarter's bucket and its
// refill, and tries the primary no more than once per RetryEvery past the
// requests in flight when it began; Redis's limits come back by themselves
// after the restart, ending the outage.
//
// Nothing here hangs on timing. A phase is held until it has shown what the
// test needs (up: 50 answers of Redis; hung: an outage; dead: 300 answers),
// and a request counts in a phase only if it was sent and answered in it.
// On a busy machine a decision can outlast the store's 100 ms while Redis is
// up, which is an outage too: the bounds are per outage, however many.
func TestFallbackSurvivesRedis(t *testing.T) {
	const (
		clients     = 16
		retryEvery  = 200 * time.Millisecond
		refusedBody = `{"error":"Rate limit exceeded"}` + "\n"
	)
	limits := ratelimit.Limits{PerMinute: 400, PerDay: 100_000}
	const localMinute = 100 // 400 × 0.25
	// The answers' X-RateLimit-Limit and -Daily-Limit: Redis's, then the share's.
	redisLimits, localLimits := [2]string{"400", "100000"}, [2]string{"100", "25000"}

	s := redistest.Start(t)
	store := urlStore(t, s.URL, Options{Timeout: 100 * time.Millisecond})
	var (
		eventsMu sync.Mutex
		events   []ratelimit.FallbackEvent
	)
	fb := ratelimit.Fallback(store, ratelimit.FallbackConfig{Share: 0.25, RetryEvery: retryEvery, Observe: func(e ratelimit.FallbackEvent) {
		eventsMu.Lock()
		defer eventsMu.Unlock()
		events = append(events, e)
	}})
	url, hc := limitedServer(t, fb, "fallback", limits, clients)

	type tally struct {
		// By the limits the answer carries: Redis's or the local share's.
		redisOK, redisRefused, localOK, localRefused, other atomic.Int64
	}
	var byPhase [outagePhases]tally
	until := func(ph outagePhase) bool {
		switch tl := &byPhase[ph]; ph {
		case redisUp:
			return tl.redisOK.Load()+tl.redisRefused.Load() >= 50
		case redisHung:
			return fb.Degraded()
		case redisDead:
			return tl.localOK.Load()+tl.localRefused.Load() >= 300
		}
		return true
	}
	run := runOutage(t, s, url, hc, outage{clients: clients, killHung: true, deadFor: time.Second, until: until,
		answer: func(ph outagePhase, resp *http.Response, body []byte, _ time.Duration) (bool, string) {
			tl := &byPhase[ph]
			h := resp.Header
			got := [2]string{h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Daily-Limit")}
			ok := resp.StatusCode == 200 && string(body) == limitedOKBody && h.Get("Retry-After") == ""
			refused := resp.StatusCode == 429 && string(body) == refusedBody && h.Get("Retry-After") != ""
			switch {
			case ok && got == redisLimits:
				tl.redisOK.Add(1)
			case refused && got == redisLimits:
				tl.redisRefused.Add(1)
			case ok && got == localLimits:
				tl.localOK.Add(1)
			case refused && got == localLimits:
				tl.localRefused.Add(1)
			default:
				tl.other.Add(1)
				return got == redisLimits, fmt.Sprintf("%d %q Retry-After %q limits %q", resp.StatusCode, body, h.Get("Retry-After"), got)
			}
			return got == redisLimits, ""
		}})

	var local, localOK int64
	for ph := range outagePhases {
		tl := &byPhase[ph]
		t.Logf("%-6s: Redis's limits %5d×200 %6d×429; the share's %4d×200 %6d×429; %d other",
			ph, tl.redisOK.Load(), tl.redisRefused.Load(), tl.localOK.Load(), tl.localRefused.Load(), tl.other.Load())
		local += tl.localOK.Load() + tl.localRefused.Load()
		localOK += tl.localOK.Load()
	}
	eventsMu.Lock()
	defer eventsMu.Unlock()
	t.Logf("sent %d in %v, answered %d, Redis store failures %d, local decisions %d, events %d",
		run.sent, run.took.Round(time.Millisecond), run.answered, store.Failures(), fb.LocalDecisions(), len(events))
	if u := &byPhase[redisUp]; u.redisOK.Load() == 0 {
		t.Errorf("up: no pass under Redis's limits")
	}
	if d := &byPhase[redisDead]; d.redisOK.Load()+d.redisRefused.Load() != 0 || d.localRefused.Load() == 0 {
		t.Errorf("dead: %d answers under Redis's limits, %d local refusals; want none, and some", d.redisOK.Load()+d.redisRefused.Load(), d.localRefused.Load())
	}
	if run.backAt.IsZero() {
		t.Fatal("no answer under Redis's limits within 10 s of its restart")
	}
	t.Logf("Redis's limits back %v after the restart", run.backAt.Sub(run.restarted).Round(time.Millisecond))
	// Outages, each begun by a failure and ended by an answer of Redis; the
	// one of Redis's death ended when its limits came back. The last may be
	// going on: a decision that outlasted the store's time after the restart.
	outages := (len(events) + 1) / 2
	for i, e := range events {
		if e.Degraded != (i%2 == 0) || (e.Err != nil) != e.Degraded {
			t.Fatalf("event %d of %d: %+v; want outages, each begun with an error and ended by Redis", i, len(events), e)
		}
	}
	if len(events) < 2 || fb.Degraded() != (len(events)%2 == 1) {
		t.Fatalf("%d events, degraded now %v; want an outage that ended, and degraded only after a last event that began one", len(events), fb.Degraded())
	}
	if got := fb.LocalDecisions(); int64(got) != local {
		t.Errorf("LocalDecisions() = %d, answers under the share's limits %d; want them equal", got, local)
	}
	// Each outage's local minute bucket starts full (100) and refills 100 a
	// minute, over at most the run: no more passes than that per outage (+1
	// for rounding); and at least the full bucket of the outage that held
	// Redis's death, which answered at least 300 requests.
	refill := int64(math.Ceil(run.took.Minutes() * localMinute))
	if most := int64(outages) * (localMinute + refill + 1); localOK < localMinute || localOK > most {
		t.Errorf("%d local passes in %d outages within %v, want %d to %d", localOK, outages, run.took, localMinute, most)
	}
	// Failed decisions of Redis per outage: the requests in flight when it
	// began (at most one a client), then one try per RetryEvery over at most
	// the run.
	if most := int64(outages) * (clients + 1 + int64(run.took/retryEvery)); store.Failures() > most {
		t.Errorf("%d failed Redis decisions in %d outages within %v, want at most %d (one try per %v)", store.Failures(), outages, run.took, most, retryEvery)
	}
}
