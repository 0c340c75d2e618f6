// Package kafka is Strata's Kafka adapter: franz-go clients from the
// configuration, topics provisioned per category, events mapped to records
// (Confluent wire format, CloudEvents headers, Java-compatible murmur2
// partitioning), and the transactional publisher the relay uses, which
// commits each batch of records together with the relay's checkpoint.
package kafka

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config says how to reach Kafka and how to name and shape topics.
type Config struct {
	Brokers       []string
	TLS           bool
	SASLMechanism string // "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	SASLUser      string
	SASLPassword  string
	// TopicPrefix is put before a category's name: "events." gives
	// events.Order.
	TopicPrefix string
	// Partitions is the number of partitions of a topic created on
	// first use.
	Partitions int
	// StoreName is the CloudEvents source of every event, and names the
	// relay's transactional id and checkpoint.
	StoreName string
}

// ClientOptions returns the franz-go options that connect to the brokers.
func (c Config) ClientOptions() ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, fmt.Errorf("no Kafka brokers configured")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("unknown SASL mechanism %q", c.SASLMechanism)
	}
	return opts, nil
}

// Topic returns the topic of a category.
func (c Config) Topic(category string) string { return c.TopicPrefix + category }

// CheckpointTopic is the compacted topic that holds the relay's
// checkpoints. Its name cannot be a category's: categories start with a
// letter.
func (c Config) CheckpointTopic() string { return c.TopicPrefix + "__relay_checkpoints" }

// TransactionalID is the relay's: the same for every relay of a store, so
// that a new one fences the ones before it.
func (c Config) TransactionalID() string { return "strata-relay-" + c.StoreName }
