package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// On a stop signal the gateway drains: in-flight requests get -shutdown-grace
// (defaultGrace) to finish, then their contexts are cut, so that a call
// waiting on an upstream answers the upstream layer's JSON 503 at once, and
// the server has shutdownWrite more to write those answers and close their
// connections. A handler that ignores its context, or a client that does not
// read its answer, can outlast that: the process then exits 1. The default
// grace plus shutdownWrite is 30 s, Kubernetes' default termination grace.
// The server's own timeouts and header bound are in internal/serving, each
// with why.
const (
	defaultGrace  = 20 * time.Second
	shutdownWrite = 10 * time.Second
)

// isStop reports whether s asks the process to stop (SIGINT or SIGTERM)
// rather than to reload.
func isStop(s os.Signal) bool { return s == os.Interrupt || s == syscall.SIGTERM }

// shutdown stops srv: it stops accepting at once, /health answers 503 (drain),
// and in-flight requests finish or, after grace, are cut by cut, which
// cancels every request's context. It returns nil once every request has been
// answered. A stop signal meanwhile closes every connection at once and
// returns a secondSignal; a reload signal is ignored.
func shutdown(srv *http.Server, gw *gateway, cut context.CancelFunc, grace time.Duration, signals <-chan os.Signal, logger *slog.Logger) error {
	logger.Info("shutting down: finishing in-flight requests", "grace", grace, "timeout", grace+shutdownWrite)
	gw.drain()
	ctx, cancel := context.WithTimeout(context.Background(), grace+shutdownWrite)
	defer cancel()
	// The grace starts once Shutdown has closed the listeners and turned
	// keep-alives off, so that every answer a cut request gets closes its
	// connection.
	closed := make(chan struct{})
	srv.RegisterOnShutdown(func() { close(closed) })
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	<-closed

	cutDone := make(chan struct{})
	timer := time.AfterFunc(grace, func() {
		defer close(cutDone)
		logger.Warn("shutdown grace over: in-flight requests are cut", "grace", grace)
		cut()
	})
	// Once run returns its log is closed: a cut under way logs first.
	defer func() {
		if !timer.Stop() {
			<-cutDone
		}
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			logger.Info("shut down: every request answered")
			return nil
		case s := <-signals:
			if !isStop(s) {
				logger.Warn("reload ignored: shutting down")
				continue
			}
			srv.Close() // Shutdown returns too, into done's buffer
			return secondSignal{s}
		}
	}
}

// secondSignal is the error of a shutdown that a second stop signal ended.
type secondSignal struct{ sig os.Signal }

func (e secondSignal) Error() string {
	return fmt.Sprintf("a second signal (%v) while shutting down: stopped at once, in-flight requests cut", e.sig)
}

// exitCode is the process's exit code for run's error err (not nil): 128
// plus the signal's number for a secondSignal, as a shell reports a process
// that signal killed (130 for a second Ctrl-C, 143 for a second SIGTERM),
// else 1.
func exitCode(err error) int {
	var s secondSignal
	if errors.As(err, &s) {
		if n, ok := s.sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return 1
}

// cancelOnStop calls cancel at the first stop signal on signals until end is
// called: the keys commands and the gateway's start-up have nothing to drain,
// and stop at once. end returns once the watch is over, and reports whether a
// reload signal came during it: the configuration read at start-up may then
// be older than the file, and the caller reloads it, so that a SIGHUP sent as
// soon as the banner shows the pid is not lost. end may be called more than
// once.
func cancelOnStop(signals <-chan os.Signal, cancel context.CancelFunc) (end func() (reload bool)) {
	quit, done := make(chan struct{}), make(chan struct{})
	var reload bool
	go func() {
		defer close(done)
		for {
			select {
			case s := <-signals:
				if isStop(s) {
					cancel()
					return
				}
				reload = true
			case <-quit:
				return
			}
		}
	}()
	return sync.OnceValue(func() bool {
		close(quit)
		<-done
		return reload
	})
}
