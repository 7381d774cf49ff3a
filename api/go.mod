module github.com/gatehouse-go/gatehouse/api

go 1.26.0
