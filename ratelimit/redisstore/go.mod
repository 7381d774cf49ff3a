module github.com/gatehouse-go/gatehouse/ratelimit/redisstore

go 1.26.0

replace github.com/gatehouse-go/gatehouse => ../..

require (
	github.com/gatehouse-go/gatehouse v0.1.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
