package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/personal"
)

// avroBenchTime is each testing.Benchmark's run: the group takes a few
// seconds in all.
const avroBenchTime = "100ms"

// avroEvent is one of the example domain's events, in natural JSON.
type avroEvent struct{ file, json string }

var avroEvents = []avroEvent{
	{"OrderCreated.avsc", `{"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}`},
	{"OrderItemAdded.avsc", `{"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": 3, "price": "15.99", "timestamp": "2023-10-27T10:00:00Z"}`},
	{"OrderShipped.avsc", `{"orderId": "a1b2c3d4", "shippingAddress": "1 Main St, Springfield", "timestamp": "2023-10-27T10:00:00Z"}`},
}

// benchAvro measures the codec on the writer's and the projector's hot
// paths — encoding natural JSON, decoding, and decoding with resolution
// (OrderItemAdded v1 data read as v2) — each beside goavro's plain decode
// of the same bytes, measured in alternating rounds of the same run. The
// issue's target is for resolution: at most 1.5 × goavro's plain decode.
func benchAvro(_ context.Context, _ string, cfg benchConfig, t *table, log io.Writer) error {
	testing.Init()
	if err := flag.Set("test.benchtime", avroBenchTime); err != nil {
		return err
	}
	dir := os.Getenv("STRATA_SCHEMAS_DIR")
	if dir == "" {
		dir = "schemas"
	}
	load := func(file string) (*avro.Schema, *goavro.Codec, error) {
		text, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil, nil, err
		}
		s, err := avro.Parse(string(text))
		if err != nil {
			return nil, nil, err
		}
		codec, err := goavro.NewCodec(string(text))
		return s, codec, err
	}
	type bench struct {
		name, target string
		min          float64 // the least ratio that meets the target; 0 for none
		ours         func() error
		base         func() error
		baseName     string // what base is; "goavro decode" when empty
	}
	var benches []bench
	for _, ev := range avroEvents {
		s, codec, err := load(ev.file)
		if err != nil {
			return err
		}
		data := []byte(ev.json)
		bin, err := s.FromJSON(data)
		if err != nil {
			return err
		}
		goavroDecode := func() error { _, _, err := codec.NativeFromBinary(bin); return err }
		benches = append(benches,
			bench{name: "encode " + s.Name() + ", natural JSON → Avro", ours: func() error { _, err := s.FromJSON(data); return err }, base: goavroDecode},
			bench{name: "decode " + s.Name() + " to native values", ours: func() error { _, err := s.Decode(bin); return err }, base: goavroDecode})
		if s.Name() != "OrderItemAdded" {
			continue
		}
		v2, _, err := load("OrderItemAdded.v2.avsc")
		if err != nil {
			return err
		}
		res, err := avro.NewResolver(s, v2)
		if err != nil {
			return err
		}
		benches = append(benches,
			bench{name: "decode OrderItemAdded v1 data as v2 (resolution)", target: ">= 0.67 (≤ 1.5× goavro)", min: 1 / 1.5,
				ours: func() error { _, err := res.Decode(bin); return err }, base: goavroDecode},
			bench{name: "decode OrderItemAdded v1 data as v2 to natural JSON", ours: func() error { _, err := res.ToJSON(bin); return err }, base: goavroDecode})
	}
	personalBenches, err := personalFieldBenches(dir)
	if err != nil {
		return err
	}
	for _, pb := range personalBenches {
		benches = append(benches, bench{name: pb.name, ours: pb.ours, base: pb.base, baseName: pb.baseName})
	}
	for _, b := range benches {
		fmt.Fprintf(log, "  %s ...\n", b.name)
		p := &pair{}
		for range cfg.rounds {
			o, err := eventsPerSecond(b.ours)
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			g, err := eventsPerSecond(b.base)
			if err != nil {
				return fmt.Errorf("%s: goavro: %w", b.name, err)
			}
			p.ours, p.base = append(p.ours, o), append(p.base, g)
		}
		r := p.ratio()
		target, v := b.target, verdict(r >= b.min)
		if b.min == 0 {
			target, v = "(for reference)", ""
		}
		baseName := b.baseName
		if baseName == "" {
			baseName = "goavro decode"
		}
		t.add(row{
			name:    "avro: " + b.name + " (events/s)",
			ours:    perSecond(median(p.ours)),
			base:    perSecond(median(p.base)) + " " + baseName,
			ratio:   fmt.Sprintf("%.2f", r),
			target:  target,
			verdict: v,
		})
	}
	return nil
}

// eventsPerSecond runs op under testing.Benchmark.
func eventsPerSecond(op func() error) (float64, error) {
	var failed error
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := op(); err != nil {
				failed = err
				b.FailNow()
			}
		}
	})
	if failed != nil {
		return 0, failed
	}
	if r.N == 0 || r.T <= 0 {
		return 0, fmt.Errorf("the benchmark did not run")
	}
	return float64(r.N) / r.T.Seconds(), nil
}

// personalBench is a comparison of the cost of personal fields.
type personalBench struct {
	name, baseName string
	ours, base     func() error
}

// personalFieldBenches compare encoding an OrderShipped and encrypting its
// shipping address (AES-256-GCM with a cached key) with encoding it from a
// copy of the schema that does not mark the address, and likewise
// decrypting and decoding with decoding.
func personalFieldBenches(dir string) ([]personalBench, error) {
	text, err := os.ReadFile(filepath.Join(dir, "OrderShipped.avsc"))
	if err != nil {
		return nil, err
	}
	marked, err := avro.Parse(string(text))
	if err != nil {
		return nil, err
	}
	unmarked, err := avro.Parse(strings.Replace(string(text), `"strata.personal": true,`, "", 1))
	if err != nil || unmarked.HasPersonal() || !marked.HasPersonal() {
		return nil, fmt.Errorf("the unmarked copy of OrderShipped: %v (personal fields: %v and %v)", err, marked.HasPersonal(), unmarked.HasPersonal())
	}
	ctx := context.Background()
	cipher := personal.NewCipher(&personal.MemoryKeys{}, personal.Options{}) // the benches measure the cipher: the key is cached
	data := []byte(`{"orderId": "a1b2c3d4", "shippingAddress": "1 Main St, Springfield", "timestamp": "2023-10-27T10:00:00Z"}`)
	plain, err := unmarked.FromJSON(data)
	if err != nil {
		return nil, err
	}
	sealed, err := cipher.Seal(ctx, marked, "c-1", plain)
	if err != nil {
		return nil, err
	}
	return []personalBench{
		{name: "encode OrderShipped and encrypt its personal address", baseName: "encoded unmarked",
			ours: func() error {
				bin, err := marked.FromJSON(data)
				if err == nil {
					_, err = cipher.Seal(ctx, marked, "c-1", bin)
				}
				return err
			},
			base: func() error { _, err := unmarked.FromJSON(data); return err }},
		{name: "decrypt OrderShipped's personal address and decode it", baseName: "decoded unmarked",
			ours: func() error {
				bin, err := cipher.Open(ctx, marked, sealed)
				if err == nil {
					_, err = marked.Decode(bin)
				}
				return err
			},
			base: func() error { _, err := unmarked.Decode(plain); return err }},
	}, nil
}
