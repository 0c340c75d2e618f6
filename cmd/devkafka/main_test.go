package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// syncBuffer is written by run and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// start runs devkafka until the returned stop, and returns its address.
func start(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out, io.Discard) }()
	re := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("devkafka did not start: %q", out.String())
		}
		addr = re.FindString(out.String())
	}
	return addr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devkafka: %v", err)
		}
	}
}

func TestTheBrokerKeepsItsStateAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	addr, stop := start(t, "--port", "0", "--data-dir", dir)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "kept", Value: []byte("across restarts")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	stop()

	port := regexp.MustCompile(`\d+$`).FindString(addr)
	addr, stop = start(t, "--port", port, "--data-dir", dir)
	defer stop()
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("kept"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := cl.PollFetches(ctx)
	if recs := f.Records(); len(recs) != 1 || string(recs[0].Value) != "across restarts" {
		t.Errorf("after a restart the topic holds %d records (%v)", len(recs), f.Errors())
	}
}
