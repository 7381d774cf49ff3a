package redisstore

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore/redistest"
)

// TestFallbackSurvivesRedis: 16 clients keep a real HTTP server busy while
// its Redis runs, hangs (SIGSTOP), is killed and comes back on the same port,
// with ratelimit.Fallback at a quarter of each limit in front of the Redis
// store. Every answer is the limiter's 200 or 429, never a 503: Redis's
// limits (400 a minute) while it answers, a quarter of them (100) while it
// does not, with no more local passes than a quarter's bucket gives over the
// outage, the primary tried at most once per RetryEvery, and Redis's limits
// again, by themselves, soon after it is back.
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
		eventAt  []time.Time
	)
	fb := ratelimit.Fallback(store, ratelimit.FallbackConfig{Share: 0.25, RetryEvery: retryEvery, Observe: func(e ratelimit.FallbackEvent) {
		eventsMu.Lock()
		defer eventsMu.Unlock()
		events, eventAt = append(events, e), append(eventAt, time.Now())
	}})
	url, hc := limitedServer(t, fb, "fallback", limits, clients)

	type tally struct {
		// By the limits the answer carries: Redis's or the local share's.
		redisOK, redisRefused, localOK, localRefused, other atomic.Int64
	}
	var byPhase [outagePhases]tally
	run := runOutage(t, s, url, hc, outage{clients: clients, killHung: true, deadFor: time.Second,
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
		t.Logf("%-4s: Redis's limits %5d×200 %6d×429; the share's %4d×200 %6d×429; %d other",
			ph, tl.redisOK.Load(), tl.redisRefused.Load(), tl.localOK.Load(), tl.localRefused.Load(), tl.other.Load())
		local += tl.localOK.Load() + tl.localRefused.Load()
		localOK += tl.localOK.Load()
	}
	eventsMu.Lock()
	defer eventsMu.Unlock()
	t.Logf("sent %d, answered %d, Redis store failures %d, local decisions %d, events %d",
		run.sent, run.answered, store.Failures(), fb.LocalDecisions(), len(events))
	// A request sent while Redis was up but still waiting on it when Redis hung
	// is answered locally: at most one per client, in flight at the switch.
	if local := byPhase[redisUp].localOK.Load() + byPhase[redisUp].localRefused.Load(); byPhase[redisUp].redisOK.Load() == 0 || local > clients {
		t.Errorf("up: %d passes under Redis's limits, %d local decisions; want some, and at most the %d in flight when Redis hung",
			byPhase[redisUp].redisOK.Load(), local, clients)
	}
	if d := &byPhase[redisDead]; d.redisOK.Load()+d.redisRefused.Load() != 0 || d.localRefused.Load() == 0 {
		t.Errorf("dead: %d answers under Redis's limits, %d local refusals; want none, and some", d.redisOK.Load()+d.redisRefused.Load(), d.localRefused.Load())
	}
	if run.backAt.IsZero() {
		t.Fatal("no answer under Redis's limits within 5 s of its restart")
	}
	if d := run.backAt.Sub(run.restarted); d > 2*time.Second {
		t.Errorf("Redis's limits came back %v after the restart, want within 2 s", d)
	} else {
		t.Logf("Redis's limits back %v after the restart", d.Round(time.Millisecond))
	}
	// One outage: it began with the hang and ended after the restart.
	if len(events) != 2 || !events[0].Degraded || events[0].Err == nil || events[1].Degraded || fb.Degraded() {
		t.Fatalf("events %+v, degraded now %v; want one outage that ended", events, fb.Degraded())
	}
	outage := eventAt[1].Sub(eventAt[0])
	t.Logf("outage %v", outage.Round(time.Millisecond))
	if got := fb.LocalDecisions(); int64(got) != local {
		t.Errorf("LocalDecisions() = %d, answers under the share's limits %d; want them equal", got, local)
	}
	// A quarter's minute bucket starts full (100) and refills 100 a minute:
	// no more passes than that over the outage (+1 for rounding), and at
	// least the full bucket under this load.
	if most := localMinute + int64(outage.Seconds()*localMinute/60) + 1; localOK < localMinute || localOK > most {
		t.Errorf("%d local passes in an outage of %v, want %d to %d", localOK, outage, localMinute, most)
	}
	// Tries of Redis in the outage: the requests in flight when it hung
	// (at most one a client), then one per RetryEvery.
	if most := int64(clients) + int64(outage/retryEvery) + 1; store.Failures() > most {
		t.Errorf("%d failed Redis decisions in an outage of %v, want at most %d (one try per %v)", store.Failures(), outage, most, retryEvery)
	}
}
