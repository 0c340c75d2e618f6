package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve serves h on ln until ctx ends, then stops taking requests and
// lets those in flight finish, for at most grace. It logs the server's own
// errors (bad requests at the connection level) as warnings.
//
// Headers must arrive within 10s and an idle keep-alive connection is closed
// after 2 minutes. There is no server-wide ReadTimeout or WriteTimeout: a
// ReadTimeout passing while a handler runs cancels the request's context,
// and both would cut long responses (subscriptions). The Router bounds
// each body instead (RouterOptions.BodyTimeout), and handlers their work.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		log.Info("shutting down: finishing requests in flight", "grace", grace)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		stopped <- srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-stopped
}
