package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The vectors of Apache Kafka's UtilsTest.testMurmur2 (signed, as Java
// returns them).
func TestMurmur2MatchesKafkasJavaClient(t *testing.T) {
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := int32(murmur2([]byte(key))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

// franz-go's own Kafka-compatible partitioner must agree with ours.
func TestPartitionAgreesWithFranzGo(t *testing.T) {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for i := 0; i < 2000; i++ {
		key := []byte(fmt.Sprintf("Order-%d-%x", i, i*7919))
		for _, n := range []int{1, 3, 12, 50} {
			if got, want := Partition(key, n), int32(p.Partition(&kgo.Record{Key: key}, n)); got != want {
				t.Fatalf("Partition(%q, %d) = %d, franz-go says %d", key, n, got, want)
			}
		}
	}
	if got := Partition([]byte("foobar"), 10); got != 6 {
		t.Errorf("Partition(foobar, 10) = %d, want 6 ((-790332482 & 0x7fffffff) %% 10)", got)
	}
}
