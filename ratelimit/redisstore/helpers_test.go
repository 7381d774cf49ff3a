package redisstore

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// urlStore is NewFromURL(url, o), closed when the test ends.
func urlStore(t *testing.T, url string, o Options) *Store {
	t.Helper()
	s, err := NewFromURL(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// limitedOKBody is what limitedServer's handler answers.
const limitedOKBody = `{"ok":true}`

// limitedServer serves, on a loopback socket, the rate-limit middleware over
// store, every request charged to key under limits, in front of a handler
// that answers 200 limitedOKBody; and returns its URL and a client with
// clients idle connections. Both are closed when the test ends.
func limitedServer(t *testing.T, store ratelimit.Store, key string, limits ratelimit.Limits, clients int) (string, *http.Client) {
	t.Helper()
	mw := ratelimit.Middleware(ratelimit.Config{
		Store: store,
		Key: func(r *http.Request) (ratelimit.Charge, bool) {
			return ratelimit.Charge{Key: key, Limits: limits}, true
		},
		Logger: quiet(),
	})
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, limitedOKBody)
	})))
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr, Timeout: answerWait}
}

// answerWait is how long limitedServer's client waits for an answer: only a
// request that hangs takes it, however busy the machine.
const answerWait = 30 * time.Second

// outagePhase is the state of Redis while a request of runOutage was sent
// and answered.
type outagePhase int32

const (
	redisUp outagePhase = iota
	redisHung
	redisDead
	redisBack // from just before the restart on
	// redisAcross labels a request that was sent in one phase and answered
	// in another: Redis was not in one state meanwhile.
	redisAcross
	outagePhases // how many there are
)

func (p outagePhase) String() string { return [...]string{"up", "hung", "dead", "back", "across"}[p] }

// outage is how runOutage takes Redis down, and what it makes of the answers.
type outage struct {
	clients  int           // concurrent clients, each a loop of POST requests
	killHung bool          // kill Redis while it is hung, instead of resuming it first
	deadFor  time.Duration // how long Redis stays dead, at least
	// until, if set, holds each of the phases up, hung and dead past its
	// time until it returns true (checked every 10 ms, for at most 10 s
	// more): what the test needs a phase to show (a count of answers, a
	// change of state) then does not depend on how fast a busy machine runs.
	until func(ph outagePhase) bool
	// answer sorts an answer to a request of phase ph (sent and answered in
	// it, or redisAcross) that took took (its body read); it returns whether
	// Redis decided it, and what is wrong with it, if anything ("" if
	// nothing). The clients call it concurrently.
	answer func(ph outagePhase, resp *http.Response, body []byte, took time.Duration) (fromRedis bool, problem string)
}

// outageRun is what runOutage saw.
type outageRun struct {
	sent, answered int64
	restarted      time.Time     // when the restart began
	backAt         time.Time     // when the first answer Redis decided after the restart came; zero if none came within 10 s
	took           time.Duration // from before the first request was sent to after the last was answered
}

// runOutage keeps the server at url busy with o.clients clients (hc) while it
// takes s through the phases: up 300 ms, hung (SIGSTOP) 500 ms, dead (killed,
// its connections cut) for o.deadFor, each held longer until o.until says so,
// and back on the same port until Redis decides an answer again, for at most
// 10 s, and then 300 ms more. A request is of a phase if it was sent and
// answered in it, else of redisAcross: the phase changes after Redis does
// (hung, dead) or before (back: before the restart begins), and is redisAcross
// from before Redis is resumed or killed until it is dead, so that a request
// of a phase saw Redis in that state only. Each answer goes to o.answer; each
// problem, up to 20 (a transport error, or what o.answer finds wrong), and a
// request sent but not answered fail t. At most 200,000 requests in 60 s.
func runOutage(t *testing.T, s *redistest.Server, url string, hc *http.Client, o outage) outageRun {
	t.Helper()
	const maxRequests = 200_000
	var phase atomic.Int32
	var reserved, sent, answered atomic.Int64
	var backAt atomic.Int64 // UnixNano
	var (
		mu       sync.Mutex
		problems []string
	)
	problem := func(ph outagePhase, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, ph.String()+": "+fmt.Sprintf(format, args...))
		}
	}

	start := time.Now()
	hardDeadline := start.Add(60 * time.Second)
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	halt := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt) // runs before the server's close and the Redis cleanup, even after a Fatal
	for range o.clients {
		wg.Go(func() {
			for time.Now().Before(hardDeadline) {
				select {
				case <-stop:
					return
				default:
				}
				if reserved.Add(1) > maxRequests {
					return
				}
				ph := outagePhase(phase.Load())
				sent.Add(1)
				began := time.Now()
				resp, err := hc.Post(url, "application/json", nil)
				if err != nil {
					problem(ph, "transport error: %v", err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(began)
				if outagePhase(phase.Load()) != ph {
					ph = redisAcross
				}
				if err != nil {
					problem(ph, "reading the body: %v", err)
					continue
				}
				answered.Add(1)
				fromRedis, p := o.answer(ph, resp, body, took)
				if p != "" {
					problem(ph, "%s", p)
				}
				if fromRedis && ph == redisBack {
					backAt.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		})
	}

	hold := func(ph outagePhase, least time.Duration) {
		time.Sleep(least)
		if o.until == nil {
			return
		}
		for end := time.Now().Add(10 * time.Second); !o.until(ph); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Errorf("%s: what the test waits for did not come within 10 s", ph)
				return
			}
		}
	}
	hold(redisUp, 300*time.Millisecond)
	s.Pause()
	phase.Store(int32(redisHung))
	hold(redisHung, 500*time.Millisecond)
	phase.Store(int32(redisAcross))
	if !o.killHung {
		s.Resume()
	}
	s.Stop()
	phase.Store(int32(redisDead))
	hold(redisDead, o.deadFor)
	phase.Store(int32(redisBack))
	run := outageRun{restarted: time.Now()}
	s.Restart()
	for time.Since(run.restarted) < 10*time.Second && time.Now().Before(hardDeadline) && backAt.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if backAt.Load() != 0 {
		time.Sleep(300 * time.Millisecond)
		run.backAt = time.Unix(0, backAt.Load())
	}
	halt()
	run.took = time.Since(start)

	run.sent, run.answered = sent.Load(), answered.Load()
	for _, p := range problems {
		t.Error(p)
	}
	if run.sent != run.answered {
		t.Errorf("sent %d requests, %d answered", run.sent, run.answered)
	}
	return run
}
