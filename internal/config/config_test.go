package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
)

var testCommand = Command{
	Name:    "strata test",
	Summary: "A command for tests.",
	Settings: []Setting{DatabaseURL, DatabaseSchema, KafkaBrokers, HTTPAddr, TopicPartitions, APITokens, LogLevel, LogFormat, RegistryURL,
		ReadModelSchema, ReadModelDatabaseURL, ProjectionsDir, MaxEventBytes},
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaultsEnvironmentAndFlags(t *testing.T) {
	t.Run("defaults apply when nothing is set", func(t *testing.T) {
		c, _, err := Load(testCommand, nil, env(), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if c.DatabaseURL != DefaultDatabaseURL || c.DatabaseSchema != "strata" || c.HTTPAddr != "127.0.0.1:8080" ||
			c.TopicPartitions != 12 || c.LogLevel != slog.LevelInfo || c.LogFormat != "text" || len(c.KafkaBrokers) != 1 ||
			c.MaxEventBytes != 1_000_000 {
			t.Errorf("defaults = %+v", c)
		}
	})
	t.Run("the environment overrides a default and a flag overrides the environment", func(t *testing.T) {
		c, rest, err := Load(testCommand, []string{"--topic-partitions", "3", "extra"},
			env("STRATA_TOPIC_PARTITIONS", "6", "STRATA_KAFKA_BROKERS", "a:1, b:2", "STRATA_LOG_LEVEL", "debug"), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if c.TopicPartitions != 3 || strings.Join(c.KafkaBrokers, ",") != "a:1,b:2" || c.LogLevel != slog.LevelDebug {
			t.Errorf("got partitions %d brokers %v level %v", c.TopicPartitions, c.KafkaBrokers, c.LogLevel)
		}
		if len(rest) != 1 || rest[0] != "extra" {
			t.Errorf("rest = %v, want [extra]", rest)
		}
	})
	t.Run("tokens carry role and principal", func(t *testing.T) {
		c, _, err := Load(testCommand, nil, env("STRATA_API_TOKENS", "0123456789abcdef:writer:svc-orders,fedcba9876543210:reader"), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		want := []Token{{"0123456789abcdef", "writer", "svc-orders"}, {"fedcba9876543210", "reader", ""}}
		if len(c.APITokens) != 2 || c.APITokens[0] != want[0] || c.APITokens[1] != want[1] {
			t.Errorf("tokens = %+v, want %+v", c.APITokens, want)
		}
	})
}

func TestACommandOverridesADefault(t *testing.T) {
	cmd := testCommand
	cmd.Defaults = map[Setting]string{HTTPAddr: "127.0.0.1:8081"}
	var help bytes.Buffer
	if _, _, err := Load(cmd, []string{"--help"}, env(), &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Load(--help) = %v", err)
	}
	if !strings.Contains(help.String(), "default 127.0.0.1:8081") {
		t.Errorf("help does not show the command's default:\n%s", help.String())
	}
	c, _, err := Load(cmd, nil, env(), &bytes.Buffer{})
	if err != nil || c.HTTPAddr != "127.0.0.1:8081" || c.ReadModelSchema != "readmodel" || c.ProjectionsDir != "projections" {
		t.Errorf("Load = %+v, %v; want the command's HTTP address and the read-model defaults", c, err)
	}
	if c, _, _ := Load(cmd, nil, env("STRATA_HTTP_ADDR", "127.0.0.1:9"), &bytes.Buffer{}); c.HTTPAddr != "127.0.0.1:9" {
		t.Errorf("the environment does not override the command's default: %s", c.HTTPAddr)
	}
	if c.ReadModelURL() != c.DatabaseURL {
		t.Errorf("ReadModelURL = %q, want the store's database by default", c.ReadModelURL())
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	tests := []struct {
		env, value, want string
	}{
		{"STRATA_DATABASE_URL", "mysql://localhost/x", "STRATA_DATABASE_URL (--database-url)"},
		{"STRATA_DATABASE_SCHEMA", "Bad-Name", "STRATA_DATABASE_SCHEMA"},
		{"STRATA_KAFKA_BROKERS", "localhost", "not host:port"},
		{"STRATA_KAFKA_BROKERS", " , ", "no brokers"},
		{"STRATA_HTTP_ADDR", "8080", "not host:port"},
		{"STRATA_TOPIC_PARTITIONS", "0", "from 1 to 10000"},
		{"STRATA_TOPIC_PARTITIONS", "twelve", "from 1 to 10000"},
		{"STRATA_API_TOKENS", "short:writer", "at least 16 characters"},
		{"STRATA_API_TOKENS", "0123456789abcdef:root", "role"},
		{"STRATA_API_TOKENS", "0123456789abcdef", "token:role"},
		{"STRATA_API_TOKENS", "0123456789abcdef:reader,0123456789abcdef:writer", "repeats a token"},
		{"STRATA_LOG_LEVEL", "loud", "STRATA_LOG_LEVEL"},
		{"STRATA_LOG_FORMAT", "xml", "not one of text, json"},
		{"STRATA_REGISTRY_URL", "ftp://x", "not an http"},
		{"STRATA_READMODEL_SCHEMA", "read-model", "STRATA_READMODEL_SCHEMA"},
		{"STRATA_READMODEL_DATABASE_URL", "http://db", "not a postgres:// URL"},
		{"STRATA_PROJECTIONS_DIR", " ", "must not be empty"},
		{"STRATA_MAX_EVENT_BYTES", "1MB", "STRATA_MAX_EVENT_BYTES (--max-event-bytes)"},
		{"STRATA_MAX_EVENT_BYTES", "100", "from 4096 to 1073741824"},
		{"STRATA_MAX_EVENT_BYTES", "2000000000", "from 4096 to 1073741824"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			_, _, err := Load(testCommand, nil, env(tt.env, tt.value), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s=%q) = %v, want an error saying %q", tt.env, tt.value, err, tt.want)
			}
		})
	}
	t.Run("an unknown flag", func(t *testing.T) {
		_, _, err := Load(testCommand, []string{"--nope"}, env(), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "--help") {
			t.Errorf("Load(--nope) = %v, want an error pointing at --help", err)
		}
	})
}

func TestHelpListsEverySettingAndHidesSecrets(t *testing.T) {
	var out bytes.Buffer
	cmd := testCommand
	cmd.Flags = func(fs *flag.FlagSet) { fs.Bool("dry-run", false, "do nothing") }
	_, _, err := Load(cmd, []string{"--help"}, env("STRATA_DATABASE_URL", "postgres://u:hunter2@db/x"), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Load(--help) = %v, want flag.ErrHelp", err)
	}
	for _, s := range cmd.Settings {
		if !strings.Contains(out.String(), string(s)) || !strings.Contains(out.String(), "--"+specs[s].flag) {
			t.Errorf("help does not mention %s / --%s:\n%s", s, specs[s].flag, out.String())
		}
	}
	if !strings.Contains(out.String(), "--dry-run") {
		t.Errorf("help does not list the command's own flag --dry-run")
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("help shows a password")
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"postgres://u:hunter2@db:5432/x?sslmode=disable": "postgres://u:xxxxx@db:5432/x?sslmode=disable",
		"postgres://u@db/x": "postgres://u@db/x",
		"s3cr3t-token":      "xxxxx",
		"":                  "",
	}
	for in, want := range tests {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false, "bad": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
