package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
)

// Config configures [New]. Its zero value is sane.
type Config struct {
	// TTL is how long a found key is served from memory without asking the
	// database (zero: 60s; negative: every Lookup asks). Changes reach the
	// cache through the poll, not through TTL expiry, so TTL only bounds the
	// queries: one per key per TTL.
	TTL time.Duration
	// NegativeTTL is how long an unknown hash is remembered as unknown (zero:
	// 5s; negative: not remembered). A key created is found by a replica
	// after its poll in any case.
	NegativeTTL time.Duration
	// MaxNegative bounds how many unknown hashes are remembered (zero:
	// 10,000); the hashes are chosen by whoever sends requests.
	MaxNegative int
	// StaleWindow is how long past its TTL a cached key keeps being served
	// while the database cannot be reached (zero: 5 minutes; negative: none):
	// the cache's [auth.CacheConfig.StaleWindow].
	StaleWindow time.Duration
	// PollInterval is how often the change log is read (zero: 250ms;
	// negative: never by itself, call [Store.Poll]).
	PollInterval time.Duration
	// FlushInterval is how often the counts of use are written (zero: 10s;
	// negative: only by [Store.Flush] and Close).
	FlushInterval time.Duration
	// RetryInterval is how long after a failed query the database is left
	// alone: lookups answer from the cache, or unavailable, without asking
	// (zero: 1s).
	RetryInterval time.Duration
	// QueryTimeout bounds each query (zero: 2s). A key's query is shared by
	// every Lookup of the key while it runs and belongs to none of them: it
	// is bounded by QueryTimeout, not by a caller's context (see
	// [Store.Lookup]).
	QueryTimeout time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logger receives the database's failures and recoveries (nil:
	// slog.Default()). No line carries a key, a hash or the database's
	// address.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.TTL, time.Minute)
	def(&c.NegativeTTL, 5*time.Second)
	def(&c.StaleWindow, 5*time.Minute)
	def(&c.PollInterval, 250*time.Millisecond)
	def(&c.FlushInterval, 10*time.Second)
	def(&c.RetryInterval, time.Second)
	def(&c.QueryTimeout, 2*time.Second)
	if c.MaxNegative <= 0 {
		c.MaxNegative = 10_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats counts what a [Store] asked of its database.
type Stats struct {
	// Lookups counts the queries for a key by its hash.
	Lookups int64
	// Polls counts the reads of the change log.
	Polls int64
	// UsageWrites counts the statements that wrote counts of use (one per
	// key per flush).
	UsageWrites int64
	// Stale counts the answers served past TTL because the database failed.
	Stale int64
}

// Store is an [auth.Store] on a database migrated by [Migrate], with a cache
// in front: the hot path asks the database at most once per key per TTL.
//
// The cache is an [auth.Cache] (TTL, NegativeTTL, MaxNegative, StaleWindow,
// and QueryTimeout as its LookupTimeout, from Config), in front of the
// Store's query of one key. A background poll reads the change log (every
// PollInterval, 250ms by default) and has the cache forget each changed key,
// so a key disabled, rotated, updated or deleted through [Admin] is seen by
// every replica within about one poll interval. When the database fails,
// cached keys are served for StaleWindow past their TTL; any other key gets
// an error wrapping [auth.ErrStoreUnavailable] (503 from the key
// middleware), never [auth.ErrKeyNotFound]. Requests let through (see
// [Store.CountUse]) are counted in memory and written every FlushInterval,
// one statement per key used.
//
// The database's health is the Store's, not the cache's: a query that fails
// (of a key, of an owner's limits or of the change log) leaves the database
// alone for RetryInterval, during which a key's query answers its failure at
// once without asking, and the cache answers stale or unavailable; the
// database going down and coming back are logged once each, to
// Config.Logger. It lives here because the three kinds of query share it;
// the cache only sees a failure.
//
// Close stops the background work. Store is safe for simultaneous use.
type Store struct {
	db   *sql.DB
	q    queries
	cfg  Config
	log  *slog.Logger
	keys *auth.Cache // in front of database{s}

	// mu guards what follows. It is taken before the lock of keys (Poll
	// has keys forget under it), never after.
	mu        sync.Mutex
	owners    map[string]ownerEntry // by owner; see OwnerLimits
	gen       uint64                // bumped by every invalidation of owners
	downUntil time.Time             // the database failed: do not ask before this
	down      bool                  // logged as down
	synced    bool                  // seen is the database's version
	seen      int64                 // the last change applied to the cache

	usage sync.Map // key ID → *use

	lookups, polls, usageWrites, stale atomic.Int64

	stop      context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
}

type use struct {
	n    atomic.Int64
	last atomic.Int64 // Unix milliseconds
}

// New returns a Store reading keys from db, a PostgreSQL (pgx stdlib) or
// SQLite (modernc.org/sqlite) database migrated by [Migrate], reads the
// change log's version once (bounded by QueryTimeout) and starts its poll and
// flush. The database need not be reachable yet.
func New(db *sql.DB, cfg Config) (*Store, error) {
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{
		db:     db,
		q:      newQueries(d),
		cfg:    cfg,
		log:    cfg.Logger,
		owners: make(map[string]ownerEntry),
	}
	s.keys = auth.NewCache(database{s}, auth.CacheConfig{
		TTL:           cfg.TTL,
		NegativeTTL:   cfg.NegativeTTL,
		MaxNegative:   cfg.MaxNegative,
		StaleWindow:   cfg.StaleWindow,
		LookupTimeout: cfg.QueryTimeout,
		Now:           cfg.Now,
	})
	// Learn the database's version before serving: a key cached before the
	// first poll would otherwise be dropped by it (the cache cannot know which
	// changes it missed). If the database cannot be reached, the background
	// poll does it later.
	s.Poll(context.Background())
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if cfg.PollInterval > 0 {
		s.done.Add(1)
		go s.every(ctx, cfg.PollInterval, func() { s.Poll(ctx) })
	}
	if cfg.FlushInterval > 0 {
		s.done.Add(1)
		go s.every(ctx, cfg.FlushInterval, func() { s.Flush(ctx) })
	}
	return s, nil
}

func (s *Store) every(ctx context.Context, d time.Duration, f func()) {
	defer s.done.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Close stops the poll and the flush, then writes the counts of use not yet
// written (bounded by QueryTimeout). It does not close the database. Lookup
// keeps working after Close, without the poll. A key's query in flight is not
// waited for: it ends within QueryTimeout.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		s.done.Wait()
		err = s.Flush(context.Background())
	})
	return err
}

// Stats returns what the Store has asked of its database so far.
func (s *Store) Stats() Stats {
	return Stats{Lookups: s.lookups.Load(), Polls: s.polls.Load(), UsageWrites: s.usageWrites.Load(), Stale: s.stale.Load() + s.keys.Stale()}
}

// Lookup implements [auth.Store], through the Store's [auth.Cache]. At most
// one query per key is in flight: lookups of a key while its query runs wait
// for that query and share its answer. The query belongs to none of them: it
// runs under a context that carries the first caller's values but not its
// cancellation, bounded by QueryTimeout, and each caller stops waiting when
// its own context ends (then with its context's error), so that one caller
// going away fails nobody else; the answer is still cached for the next.
func (s *Store) Lookup(ctx context.Context, hash [32]byte) (*auth.Key, error) {
	return s.keys.Lookup(ctx, hash)
}

// database is the Store's [auth.Store] without a cache: one query of the
// key per Lookup, or none while the database is left alone after a failure.
// The Store's cache is in front of it.
type database struct{ s *Store }

// Lookup queries the key with hash under ctx, which the cache bounds by
// QueryTimeout, and notes the database's health. Every failure but an
// unknown key wraps [auth.ErrStoreUnavailable].
func (d database) Lookup(ctx context.Context, hash [32]byte) (*auth.Key, error) {
	s := d.s
	now := s.cfg.Now()
	s.mu.Lock()
	left := now.Before(s.downUntil)
	s.mu.Unlock()
	if left {
		return nil, fmt.Errorf("sqlstore: %w: database failed recently", auth.ErrStoreUnavailable)
	}
	k, err := s.query(ctx, hash)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && !errors.Is(err, auth.ErrKeyNotFound) {
		// No caller's going away ends the query: a failure, its timeout
		// included, is the database's.
		s.failed(now, err)
		return nil, fmt.Errorf("sqlstore: %w: %v", auth.ErrStoreUnavailable, err)
	}
	s.recovered()
	return k, err
}

// failed notes a failed query: the database is left alone for RetryInterval.
// s.mu is held.
func (s *Store) failed(now time.Time, err error) {
	s.downUntil = now.Add(s.cfg.RetryInterval)
	if !s.down {
		s.down = true
		s.log.Error("sqlstore: database unavailable; serving cached keys", "error", logError(err), "stale_window", s.cfg.StaleWindow)
	}
}

// recovered notes a successful query. s.mu is held.
func (s *Store) recovered() {
	s.downUntil = time.Time{}
	if s.down {
		s.down = false
		s.log.Info("sqlstore: database available again")
	}
}

// query reads the key with hash from the database, under ctx.
func (s *Store) query(ctx context.Context, hash [32]byte) (*auth.Key, error) {
	s.lookups.Add(1)
	k := &auth.Key{Hash: hash}
	var products, windows string
	var disabled int
	var expires sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q.lookup, hashHex(hash)).Scan(&k.ID, &k.Name, &products, &k.PerMinute, &k.PerDay, &disabled, &expires, &k.Allowance, &k.Owner, &windows)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(products), &k.Products); err != nil {
		// A row this package did not write: refuse the key rather than guess.
		return nil, fmt.Errorf("sqlstore: key %s: products: %w", k.ID, err)
	}
	if k.Windows, err = decodeWindows(windows); err != nil {
		return nil, fmt.Errorf("sqlstore: key %s: windows: %w", k.ID, err)
	}
	k.Disabled = disabled != 0
	k.ExpiresAt = fromMillis(expires)
	return k, nil
}

func hashHex(h [32]byte) string {
	k := auth.Key{Hash: h}
	return k.HashHex()
}

// Poll reads the change log once and drops the changed keys from the cache;
// after a gap (changes pruned while this replica could not read them) or on
// the first successful poll, it drops the whole cache. The background poll
// calls it every PollInterval.
func (s *Store) Poll(ctx context.Context) error {
	s.polls.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	s.mu.Lock()
	synced, seen := s.synced, s.seen
	s.mu.Unlock()
	if !synced {
		var v int64
		if err := s.db.QueryRowContext(ctx, s.q.version).Scan(&v); err != nil {
			return s.pollFailed(ctx, err)
		}
		s.mu.Lock()
		s.clearLocked()
		s.synced, s.seen = true, v
		s.recovered()
		s.mu.Unlock()
		return nil
	}
	for {
		rows, err := s.db.QueryContext(ctx, s.q.changes, seen)
		if err != nil {
			return s.pollFailed(ctx, err)
		}
		var hashes [][32]byte
		var owners []string
		gap := false
		n := 0
		for rows.Next() {
			var v int64
			var h string
			if err := rows.Scan(&v, &h); err != nil {
				rows.Close()
				return s.pollFailed(ctx, err)
			}
			if v != seen+1 {
				gap = true
			}
			seen = v
			n++
			if owner, ok := strings.CutPrefix(h, ownerChangePrefix); ok {
				owners = append(owners, owner)
			} else if hash, err := auth.ParseHash(h); err == nil {
				hashes = append(hashes, hash)
			} else {
				gap = true // unreadable: drop everything to be safe
			}
		}
		if err := rows.Close(); err != nil {
			return s.pollFailed(ctx, err)
		}
		if err := rows.Err(); err != nil {
			return s.pollFailed(ctx, err)
		}
		s.mu.Lock()
		s.recovered()
		if gap {
			s.clearLocked()
		} else {
			if len(hashes) > 0 {
				s.keys.Forget(hashes...)
			}
			if len(owners) > 0 {
				s.gen++
				for _, o := range owners {
					delete(s.owners, o)
				}
			}
		}
		s.seen = seen
		s.mu.Unlock()
		if n < 1000 {
			return nil
		}
	}
}

func (s *Store) pollFailed(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		s.mu.Lock()
		s.failed(s.cfg.Now(), err)
		s.mu.Unlock()
	}
	return fmt.Errorf("sqlstore: poll: %w", err)
}

// clearLocked drops every cached answer, of keys and of owners. s.mu is
// held.
func (s *Store) clearLocked() {
	s.keys.ForgetAll()
	s.gen++
	clear(s.owners)
}

// CountUse returns middleware that counts each request reaching next as a use
// of its key (the record [auth.KeyFrom] finds), for [Store.Flush] to write as
// the key's request count and last use. Put it in front of the product's
// handler, inside every check, so that only the requests let through count,
// not those refused with 429, 403, 404, 400 or 413:
//
//	gatehouse.Config{Product: store.CountUse(upstreams), …}
//
// A request without a key is not counted. The count costs two atomic
// operations (and a map read) per request.
func (s *Store) CountUse(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, ok := auth.KeyFrom(r.Context()); ok {
			s.used(k.ID, s.cfg.Now())
		}
		next.ServeHTTP(w, r)
	})
}

// used counts a request let through with the key of the given ID.
func (s *Store) used(id string, now time.Time) {
	v, ok := s.usage.Load(id)
	if !ok {
		v, _ = s.usage.LoadOrStore(id, new(use))
	}
	u := v.(*use)
	u.n.Add(1)
	u.last.Store(now.UnixMilli())
}

// Flush writes the counts of use gathered since the last flush, in one
// transaction with one statement per key used. On failure the counts are kept
// for the next flush.
func (s *Store) Flush(ctx context.Context) error {
	type pending struct {
		id      string
		n, last int64
	}
	var batch []pending
	s.usage.Range(func(id, v any) bool {
		u := v.(*use)
		if n := u.n.Swap(0); n > 0 {
			batch = append(batch, pending{id.(string), n, u.last.Load()})
		}
		return true
	})
	if len(batch) == 0 {
		return nil
	}
	giveBack := func() {
		for _, p := range batch {
			if v, ok := s.usage.Load(p.id); ok {
				v.(*use).n.Add(p.n)
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		giveBack()
		return fmt.Errorf("sqlstore: flush: %w", err)
	}
	defer tx.Rollback()
	for _, p := range batch {
		s.usageWrites.Add(1)
		if _, err := tx.ExecContext(ctx, s.q.used, p.n, p.last, p.last, p.id); err != nil {
			giveBack()
			return fmt.Errorf("sqlstore: flush: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		giveBack()
		return fmt.Errorf("sqlstore: flush: %w", err)
	}
	return nil
}
