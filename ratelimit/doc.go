// Package ratelimit limits each key of a keyed API to a number of requests per
// minute, per day and per any other window, and tells the caller where it
// stands in X-RateLimit-* (and IETF RateLimit) headers on every response.
//
//	limit := ratelimit.Middleware(ratelimit.Config{
//		Limits: ratelimit.Limits{PerMinute: 60, PerDay: 10000},
//		Key:    func(r *http.Request) (ratelimit.Charge, bool) { return ratelimit.Charge{Key: userID(r)}, true },
//	})
//	http.ListenAndServe(":8080", limit(mux))
//
// Each key has windows, token buckets evaluated together: a per-minute one that
// holds PerMinute tokens and refills at PerMinute/60 tokens a second, a per-day
// one that holds PerDay tokens and refills at PerDay/86400 tokens a second, and
// any further windows of [Limits].More, each a [Rate] of any period from a
// second to 31 days. A request ([Charge]) costs one token or more from each
// window, and, when it names an owner, from each window of the owner's bucket
// too, shared by all of that owner's keys. It passes only if every window has
// room for its cost, and then takes it from each; a refused request takes
// nothing from any. The arithmetic is a generic cell rate algorithm, in
// integers and exact for limits up to [MaxLimit]; docs/limits.md in the
// repository has the details.
//
// A key's state lives in a [Store]. The default, [MemoryStore], keeps it in this
// process, sharded by key, and drops the state of a key whose buckets have
// refilled completely (such a key is the same as one never seen) as it goes,
// without a background goroutine. A shared store (Redis, say) implements [Store]
// for several replicas; redisstore (ratelimit/redisstore, a module of its own)
// is one, with the same arithmetic, so that it decides as MemoryStore does.
//
// The headers, set before the wrapped handler runs so that they are on its
// answer whatever its status:
//
//	X-RateLimit-Limit            the key's requests per minute (the minute bucket's size)
//	X-RateLimit-Remaining        whole requests left in the minute bucket after this one
//	X-RateLimit-Daily-Limit      the key's requests per day (the day bucket's size)
//	X-RateLimit-Daily-Remaining  whole requests left in the day bucket after this one
//	Retry-After                  on a 429 only: whole seconds, rounded up, after which
//	                             the refused request would pass
//
// With [Config.DraftHeaders], or whenever a decision has further windows
// (Limits.More or an owner's), the IETF draft's structured fields as well,
// listing every window, named by its period ("minute", "day", "hour", "30d",
// and "owner-day" for an owner's):
//
//	RateLimit-Policy: "minute";q=60;w=60, "day";q=10000;w=86400
//	RateLimit: "minute";r=58;t=2, "day";r=9998;t=2
//
// where q is a policy's quota, w its window in seconds, r the remaining whole
// requests and t the seconds, rounded up, until that bucket is full again.
//
// A configuration that cannot work (no Key, limits out of range, a
// FallbackConfig without its Share, a nil primary or handler) makes
// [Middleware] and [Fallback] panic when they are called, with the error of
// [Config.Validate] or [FallbackConfig.Validate]: never a limiter that fails
// at request time. docs/adopting.md in the repository gives the rule, the same
// in every package of gatehouse.
package ratelimit
