package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// UsageConfig configures [NewUsage]. Its zero value is sane.
type UsageConfig struct {
	// FlushInterval is how often the counts are written (zero:
	// [DefaultUsageFlushInterval]; negative: only by [Usage.Flush] and
	// Close). A process killed without Close loses at most the counts of
	// one interval, plus those the database refused meanwhile.
	FlushInterval time.Duration
	// MaxPending bounds the rows (one per hour, key, owner, product and
	// status class) kept in memory while the database cannot take them
	// (zero: [DefaultUsageMaxPending]). A request that would need one more
	// row is counted as dropped ([UsageStats].Dropped) instead, and a
	// warning is logged once until the next successful flush.
	MaxPending int
	// QueryTimeout bounds each flush (zero: 5s).
	QueryTimeout time.Duration
	// Now is the clock that places a request in its hour (nil: time.Now).
	Now func() time.Time
	// Logger receives the failed flushes, the recoveries and the drops (nil:
	// slog.Default()). No line carries a key, a key id or the database's
	// address.
	Logger *slog.Logger
}

// DefaultUsageFlushInterval is [UsageConfig].FlushInterval's default: a
// write per replica every 10 seconds, and at most 10 seconds of counts lost
// to a SIGKILL.
const DefaultUsageFlushInterval = 10 * time.Second

// DefaultUsageMaxPending is [UsageConfig].MaxPending's default: 100,000 rows
// (some 20 MB) is an hour of 100,000 distinct keys, products and status
// classes, or a day of 4,000, kept while the database is away.
const DefaultUsageMaxPending = 100_000

// UsageBatchRetention is how long a flush's batch id is kept, so that the
// same batch retried within it adds nothing; older ids are pruned by later
// flushes.
const UsageBatchRetention = 7 * 24 * time.Hour

func (c UsageConfig) withDefaults() UsageConfig {
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultUsageFlushInterval
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultUsageMaxPending
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// UsageStats counts what a [Usage] recorded and wrote.
type UsageStats struct {
	// Requests counts the requests recorded, dropped ones included.
	Requests int64
	// Dropped counts the requests not kept because MaxPending rows were
	// waiting: they are in no row of the database.
	Dropped int64
	// Flushes counts the flushes that committed; FailedFlushes those that
	// did not (their counts wait for the next).
	Flushes, FailedFlushes int64
	// Pending is the number of rows waiting in memory.
	Pending int
}

// usageKey is one row of gatehouse_usage: an hour (Unix milliseconds of its
// start), a key, its owner, a product and a status class (1 to 5).
type usageKey struct {
	period                int64
	keyID, owner, product string
	class                 uint8
}

// usageCount is what a row adds: requests and cost units.
type usageCount struct{ requests, cost int64 }

// usageBatch is the counts of one flush, under the id that makes its retry
// add nothing. sent is true once a commit of it was attempted: it may be in
// the database, so it is retried as it is, under its id, and never merged
// with newer counts.
type usageBatch struct {
	id   string
	rows map[usageKey]usageCount
	sent bool
}

// Usage counts in memory, per hour, what each key was charged for, and adds
// the counts to the database (gatehouse_usage, created by [Migrate]) every
// FlushInterval and at Close. [Usage.Record] never touches the database and
// never waits for it.
//
// Each flush is one transaction that adds its counts to their rows and
// records its batch id; a flush whose reply was lost is retried under the
// same id, which the database then refuses, so no count is added twice.
// While the database cannot be written, counts wait in memory (up to
// MaxPending rows) and are written when it is back.
//
// Usage is safe for concurrent use; it implements the root package's
// gatehouse.UsageRecorder.
type Usage struct {
	db  *sql.DB
	d   dialect
	cfg UsageConfig
	log *slog.Logger

	mu       sync.Mutex
	pending  map[usageKey]usageCount
	heldRows int  // rows in held, counted against MaxPending
	dropping bool // the drop warning was logged since the last flush
	dropped  int64
	flushed  time.Time // see Flushed

	flushMu sync.Mutex    // one flush at a time
	held    []*usageBatch // batches whose commit may have happened; flushMu held
	down    bool          // a flush failed and was logged; flushMu held

	requests, flushes, failedFlushes atomic.Int64

	// afterCommit, if set (by tests), runs after a flush's commit and
	// returns the error its caller sees: a reply lost after the commit.
	afterCommit func() error

	stop      context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
}

// NewUsage returns a Usage writing to db, a database of [Open] migrated by
// [Migrate], and starts its flush. The database need not be reachable yet.
// Close it at shutdown: it writes what is left.
func NewUsage(db *sql.DB, cfg UsageConfig) (*Usage, error) {
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u := &Usage{db: db, d: d, cfg: cfg, log: cfg.Logger, pending: make(map[usageKey]usageCount)}
	ctx, stop := context.WithCancel(context.Background())
	u.stop = stop
	if cfg.FlushInterval > 0 {
		u.done.Add(1)
		go func() {
			defer u.done.Done()
			t := time.NewTicker(cfg.FlushInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					u.Flush(ctx)
				}
			}
		}()
	}
	return u, nil
}

// Record counts one request charged to the key keyID of owner for product,
// answered with status, costing cost units, in the current hour of the
// clock. It takes a short lock and no database call, and allocates only
// when the row is new to memory (a map's growth). Past MaxPending rows, a
// request needing a new row is counted as dropped.
func (u *Usage) Record(keyID, owner, product string, status, cost int) {
	u.requests.Add(1)
	ms := u.cfg.Now().UnixMilli()
	k := usageKey{period: ms - ms%int64(time.Hour/time.Millisecond), keyID: keyID, owner: owner, product: product, class: statusClass(status)}
	u.mu.Lock()
	c, ok := u.pending[k]
	if !ok && len(u.pending)+u.heldRows >= u.cfg.MaxPending {
		u.dropped++
		if !u.dropping {
			u.dropping = true
			u.log.Warn("sqlstore: usage not kept: too many rows wait for the database", "max_pending", u.cfg.MaxPending)
		}
		u.mu.Unlock()
		return
	}
	c.requests++
	c.cost += int64(cost)
	u.pending[k] = c
	u.mu.Unlock()
}

// statusClass is the class of an HTTP status, 1 to 5 (2 for 200 to 299);
// anything outside 100 to 599 is a server error, 5.
func statusClass(status int) uint8 {
	if status < 100 || status > 599 {
		return 5
	}
	return uint8(status / 100)
}

// classNames are the status classes as stored, by class.
var classNames = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

// Stats returns the counts so far.
func (u *Usage) Stats() UsageStats {
	u.mu.Lock()
	pending, dropped := len(u.pending)+u.heldRows, u.dropped
	u.mu.Unlock()
	return UsageStats{Requests: u.requests.Load(), Dropped: dropped, Flushes: u.flushes.Load(), FailedFlushes: u.failedFlushes.Load(), Pending: pending}
}

// Flush writes, in one transaction bounded by QueryTimeout, the counts
// recorded since the last successful flush: the batches of failed flushes
// each under its own id (added only if that id is not in the database yet),
// and the newer counts under a new one. On failure every count is kept for
// the next flush. Record does not wait for it.
func (u *Usage) Flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	u.mu.Lock()
	taken := u.cfg.Now()
	if len(u.pending) > 0 {
		u.held = append(u.held, &usageBatch{id: uuid.NewString(), rows: u.pending})
		u.pending = make(map[usageKey]usageCount, len(u.pending))
		u.heldRows = 0
		for _, b := range u.held {
			u.heldRows += len(b.rows)
		}
	}
	if len(u.held) == 0 { // nothing waits: the database has every count
		u.flushed = taken
		u.mu.Unlock()
		return nil
	}
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, u.cfg.QueryTimeout)
	defer cancel()
	if err := u.write(ctx); err != nil {
		u.failedFlushes.Add(1)
		u.keepUnsent()
		if !u.down {
			u.down = true
			u.log.Error("sqlstore: usage flush failed; counts kept in memory", "error", logError(err), "pending_rows", u.Stats().Pending, "max_pending", u.cfg.MaxPending)
		}
		return fmt.Errorf("sqlstore: usage flush: %w", err)
	}
	u.flushes.Add(1)
	u.held = nil
	u.mu.Lock()
	u.flushed = taken
	u.heldRows = 0
	dropped, wasDropping := u.dropped, u.dropping
	u.dropping = false
	u.mu.Unlock()
	if u.down || wasDropping {
		u.down = false
		u.log.Info("sqlstore: usage flushed again", "dropped_requests", dropped)
	}
	return nil
}

// Flushed returns the time, on the Usage's clock, at which the last
// successful flush took the counts it wrote: every count whose Record
// returned before it, and was not dropped, is in the database. A flush with
// nothing to write succeeds too. It is zero before the first. A reader of
// the database (an admin page, say) tells from it how fresh the rows are.
func (u *Usage) Flushed() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.flushed
}

// keepUnsent puts the counts of the held batches that never reached a
// commit back with the newer ones: they are surely not in the database, and
// a row of them recorded again needs no second place in memory. flushMu is
// held.
func (u *Usage) keepUnsent() {
	u.mu.Lock()
	defer u.mu.Unlock()
	sent := u.held[:0]
	u.heldRows = 0
	for _, b := range u.held {
		if b.sent {
			sent = append(sent, b)
			u.heldRows += len(b.rows)
			continue
		}
		for k, c := range b.rows {
			p := u.pending[k]
			u.pending[k] = usageCount{p.requests + c.requests, p.cost + c.cost}
		}
	}
	u.held = sent
}

// write adds the held batches in one transaction. A failure of the commit
// itself, or of the reply to it, marks the batches sent: they may be in the
// database, and their ids decide on the retry.
func (u *Usage) write(ctx context.Context) error {
	tx, err := u.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := u.cfg.Now().UnixMilli()
	if _, err := tx.ExecContext(ctx, u.d.rebind(`DELETE FROM gatehouse_usage_batches WHERE flushed_at < ?`), now-UsageBatchRetention.Milliseconds()); err != nil {
		return err
	}
	claim := u.d.rebind(`INSERT INTO gatehouse_usage_batches (id, flushed_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`)
	add := u.d.rebind(`INSERT INTO gatehouse_usage (period, key_id, owner, product, status, requests, cost) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (period, key_id, owner, product, status) DO UPDATE SET requests = gatehouse_usage.requests + excluded.requests, cost = gatehouse_usage.cost + excluded.cost`)
	for _, b := range u.held {
		res, err := tx.ExecContext(ctx, claim, b.id, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			continue // committed by an earlier flush whose reply was lost
		}
		// The same order in every replica: two flushes adding to the same
		// rows wait for each other instead of deadlocking.
		keys := make([]usageKey, 0, len(b.rows))
		for k := range b.rows {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUsageKeys)
		for _, k := range keys {
			c := b.rows[k]
			if _, err := tx.ExecContext(ctx, add, k.period, k.keyID, k.owner, k.product, classNames[k.class], c.requests, c.cost); err != nil {
				return err
			}
		}
	}
	for _, b := range u.held {
		b.sent = true
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if u.afterCommit != nil {
		return u.afterCommit()
	}
	return nil
}

func compareUsageKeys(a, b usageKey) int {
	return cmp.Or(cmp.Compare(a.period, b.period), cmp.Compare(a.keyID, b.keyID), cmp.Compare(a.owner, b.owner),
		cmp.Compare(a.product, b.product), cmp.Compare(a.class, b.class))
}

// Close stops the interval's flush and writes what is left (bounded by
// QueryTimeout); its error is that flush's, and the counts it could not
// write are lost. It does not close the database. Counts recorded after
// Close are never written.
func (u *Usage) Close() error {
	var err error
	u.closeOnce.Do(func() {
		u.stop()
		u.done.Wait()
		err = u.Flush(context.Background())
	})
	return err
}
