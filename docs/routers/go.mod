module github.com/gatehouse-go/gatehouse/docs/routers

go 1.26.0

replace github.com/gatehouse-go/gatehouse => ../../

require (
	github.com/gatehouse-go/gatehouse v0.1.0
	github.com/go-chi/chi/v5 v5.5.0
	github.com/gorilla/mux v1.8.1
)

require (
	github.com/google/uuid v1.6.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
