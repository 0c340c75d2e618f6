package avro

import (
	"math/big"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// The benchmarks put our figures beside goavro's for the same bytes, so the
// ratio can be read on any machine:
//
//	go test -run '^$' -bench . -benchmem ./internal/avro/
//
// The resolution target: Resolved (v1 data read as v2) ≤ 1.5 × GoavroDecode.

type orderEvent struct {
	name, file, json string
	native           map[string]any // our native form
	goavroNative     map[string]any // goavro's (decimals as *big.Rat)
}

func orderEvents() []orderEvent {
	ts := time.Date(2023, 10, 27, 10, 0, 0, 0, time.UTC)
	return []orderEvent{
		{"OrderCreated", "OrderCreated.avsc",
			`{"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}`,
			map[string]any{"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": ts},
			map[string]any{"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": ts}},
		{"OrderItemAdded", "OrderItemAdded.avsc", itemJSON,
			map[string]any{"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": int32(3), "price": NewDecimalInt64(1599, 2), "timestamp": ts},
			map[string]any{"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": int32(3), "price": big.NewRat(1599, 100), "timestamp": ts}},
		{"OrderShipped", "OrderShipped.avsc",
			`{"orderId": "a1b2c3d4", "shippingAddress": "1 Main St, Springfield", "timestamp": "2023-10-27T10:00:00Z"}`,
			map[string]any{"orderId": "a1b2c3d4", "shippingAddress": "1 Main St, Springfield", "timestamp": ts},
			map[string]any{"orderId": "a1b2c3d4", "shippingAddress": "1 Main St, Springfield", "timestamp": ts}},
	}
}

func BenchmarkOrderEvents(b *testing.B) {
	for _, ev := range orderEvents() {
		s := orderSchema(b, ev.file)
		codec, err := goavro.NewCodec(s.Text())
		if err != nil {
			b.Fatal(err)
		}
		bin, err := s.FromJSON([]byte(ev.json))
		if err != nil {
			b.Fatal(err)
		}
		// OrderItemAdded data is read as v2; the others through a resolver
		// with their own schema (the identity resolution).
		reader := s
		if ev.name == "OrderItemAdded" {
			reader = orderSchema(b, "OrderItemAdded.v2.avsc")
		}
		res, err := NewResolver(s, reader)
		if err != nil {
			b.Fatal(err)
		}

		b.Run(ev.name+"/GoavroDecode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := codec.NativeFromBinary(bin); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/Decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Decode(bin); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/Resolved", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := res.Decode(bin); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/ResolvedToJSON", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := res.ToJSON(bin); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/Transcode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := res.Transcode(bin); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/GoavroEncode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.BinaryFromNative(nil, ev.goavroNative); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/EncodeNative", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Encode(ev.native); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/FromJSON", func(b *testing.B) {
			b.ReportAllocs()
			data := []byte(ev.json)
			for b.Loop() {
				if _, err := s.FromJSON(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
