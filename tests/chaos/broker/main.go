// Command broker is the chaos suite's Kafka-protocol broker: franz-go's
// kfake as cmd/devkafka runs it — one broker, its state in a directory kept
// across restarts, topics created when first written to — except that it
// listens on one port and advertises another in its metadata. The suite
// puts a TCP proxy on the advertised port, so that every Kafka connection
// of every process, the bootstrap and those that follow the metadata, goes
// through the proxy and its faults.
//
// kfake advertises whatever address its listener reports; this command
// gives it a listener that reports the advertised address. cmd/devkafka
// has no such option, which is why the suite has a command of its own.
// SIGUSR1 crashes it between two requests (see run).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "broker: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.Int("listen-port", 0, "port on 127.0.0.1 to listen on")
	advertise := flag.Int("advertise-port", 0, "port on 127.0.0.1 to advertise in metadata (the proxy's)")
	dir := flag.String("data-dir", "", "directory that keeps the broker's state across restarts")
	partitions := flag.Int("partitions", 12, "partitions of topics created without a count")
	minSession := flag.Duration("min-session-timeout", 6*time.Second, "least consumer-group session timeout accepted")
	flag.Parse()
	if *listen == 0 || *advertise == 0 || *dir == "" {
		return fmt.Errorf("--listen-port, --advertise-port and --data-dir are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	advertised := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: *advertise}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(*advertise),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, fmt.Sprintf("127.0.0.1:%d", *listen))
			if err != nil {
				return nil, err
			}
			return advertisingListener{ln, advertised}, nil
		}),
		kfake.DataDir(*dir),
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.GroupMinSessionTimeout(*minSession),
	)
	if err != nil {
		return err
	}
	// SIGUSR1 kills the broker (SIGKILL: nothing flushed, nothing closed)
	// from inside its request loop, so between two requests. A SIGKILL
	// from outside can land while kfake writes a transaction's commit
	// markers, one partition after the other with nothing that completes
	// them at the next start: a crash there commits the transaction in
	// some partitions and aborts it in others (README, "The chaos suite").
	crash := make(chan os.Signal, 1)
	signal.Notify(crash, syscall.SIGUSR1)
	go func() {
		<-crash
		c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the process ends here
		})
	}()
	fmt.Printf("broker listening on 127.0.0.1:%d, advertising %s, state in %s\n", *listen, advertised, *dir)
	<-ctx.Done()
	c.Close()
	return nil
}

// advertisingListener is a listener that reports another address as its
// own: the one kfake puts in its metadata answers.
type advertisingListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisingListener) Addr() net.Addr { return l.addr }
