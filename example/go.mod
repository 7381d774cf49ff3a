module github.com/gatehouse-go/gatehouse/example

go 1.26.0

replace github.com/gatehouse-go/gatehouse => ../

require github.com/gatehouse-go/gatehouse v0.0.0-00010101000000-000000000000

require (
	github.com/google/uuid v1.6.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
