// Package logbatch gives the gatehouse command a log writer that gathers lines
// for a few milliseconds and writes them to its output in one write(2), as
// nginx's access_log buffer=... flush=... does: under load, one system call
// per request log line costs the gateway, and the pipe's reader as much again.
//
//	logs := logbatch.New(os.Stderr, logbatch.Config{Flush: 10 * time.Millisecond})
//	defer logs.Close() // writes what is pending
//	logger := slog.New(slog.NewTextHandler(logs, nil))
//	logger.Info("request", "status", 200) // on stderr within 10 ms
//
// A line is never split or interleaved with another (a slog handler makes one
// Write per record and the Writer keeps each Write whole), nothing is dropped
// (a writer faster than the output is made to wait once MaxPending bytes are
// held), and lines reach the output in the order they were written.
package logbatch
