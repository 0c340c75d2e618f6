// Package config loads Strata's settings from the environment and from
// command-line flags, with every default in one table.
//
// Each setting has an environment variable (STRATA_...) and a flag; a flag
// given on the command line wins over the environment, which wins over the
// default. Values are checked when loaded, and secrets are redacted wherever
// a Config is printed.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Config holds every setting; a command uses the ones it declares.
type Config struct {
	DatabaseURL          string
	DatabaseSchema       string
	KafkaBrokers         []string
	KafkaTLS             bool
	KafkaSASLMechanism   string
	KafkaSASLUser        string
	KafkaSASLPassword    string
	HTTPAddr             string
	TopicPrefix          string
	TopicPartitions      int
	StoreName            string
	MaxEventBytes        int
	SchemasDir           string
	RegistryURL          string
	APITokens            []Token
	AllowUnauthenticated bool
	GroupPrefix          string
	ReadModelDatabaseURL string
	ReadModelSchema      string
	ProjectionsDir       string
	LogLevel             slog.Level
	LogFormat            string
	MasterKeyFile        string
	OTLPEndpoint         string
}

// Token is one entry of STRATA_API_TOKENS: a bearer token, its role, and
// optionally the principal it acts as ("token:role:principal").
type Token struct {
	Secret    string
	Role      string
	Principal string
}

// Roles, from the least to the most allowed.
const (
	RoleReader = "reader"
	RoleWriter = "writer"
	RoleAdmin  = "admin"
)

// Setting names one configurable value.
type Setting string

// The settings. The names are the environment variables.
const (
	DatabaseURL          Setting = "STRATA_DATABASE_URL"
	DatabaseSchema       Setting = "STRATA_DATABASE_SCHEMA"
	KafkaBrokers         Setting = "STRATA_KAFKA_BROKERS"
	KafkaTLS             Setting = "STRATA_KAFKA_TLS"
	KafkaSASLMechanism   Setting = "STRATA_KAFKA_SASL_MECHANISM"
	KafkaSASLUser        Setting = "STRATA_KAFKA_SASL_USER"
	KafkaSASLPassword    Setting = "STRATA_KAFKA_SASL_PASSWORD"
	HTTPAddr             Setting = "STRATA_HTTP_ADDR"
	TopicPrefix          Setting = "STRATA_TOPIC_PREFIX"
	TopicPartitions      Setting = "STRATA_TOPIC_PARTITIONS"
	StoreName            Setting = "STRATA_STORE_NAME"
	MaxEventBytes        Setting = "STRATA_MAX_EVENT_BYTES"
	SchemasDir           Setting = "STRATA_SCHEMAS_DIR"
	RegistryURL          Setting = "STRATA_REGISTRY_URL"
	APITokens            Setting = "STRATA_API_TOKENS"
	AllowUnauthenticated Setting = "STRATA_ALLOW_UNAUTHENTICATED"
	GroupPrefix          Setting = "STRATA_GROUP_PREFIX"
	ReadModelDatabaseURL Setting = "STRATA_READMODEL_DATABASE_URL"
	ReadModelSchema      Setting = "STRATA_READMODEL_SCHEMA"
	ProjectionsDir       Setting = "STRATA_PROJECTIONS_DIR"
	LogLevel             Setting = "STRATA_LOG_LEVEL"
	LogFormat            Setting = "STRATA_LOG_FORMAT"
	MasterKeyFile        Setting = "STRATA_MASTER_KEY_FILE"
	OTLPEndpoint         Setting = "STRATA_OTEL_EXPORTER_OTLP_ENDPOINT"
)

type spec struct {
	flag   string
	def    string
	help   string
	secret bool
	apply  func(c *Config, v string) error
}

// DefaultDatabaseURL is the database a local PostgreSQL offers.
const DefaultDatabaseURL = "postgres://strata@127.0.0.1:5432/strata?sslmode=disable"

// Bounds of STRATA_MAX_EVENT_BYTES. The default is below franz-go's
// default ProducerBatchMaxBytes (1,000,012 bytes) and Kafka's default
// max.message.bytes (1,048,588); the relay raises its producer's limit
// with it, the topics' limit is the operator's. The least is
// room for an event's headers; the most is Kafka's int32 sizes, far beyond
// any request body.
const (
	DefaultMaxEventBytes = 1_000_000
	MinMaxEventBytes     = 4 << 10
	MaxMaxEventBytes     = 1 << 30
)

// specs is the one table of flags, defaults and help texts.
var specs = map[Setting]spec{
	DatabaseURL: {"database-url", DefaultDatabaseURL, "PostgreSQL URL of the event store", true,
		func(c *Config, v string) error { c.DatabaseURL = v; return checkPostgresURL(v) }},
	DatabaseSchema: {"database-schema", "strata", "schema that holds the store's tables", false,
		func(c *Config, v string) error { c.DatabaseSchema = v; return checkIdentifier(v) }},
	KafkaBrokers: {"kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated host:port", false,
		func(c *Config, v string) error {
			c.KafkaBrokers, _ = splitList(v)
			return checkHostPorts(c.KafkaBrokers)
		}},
	KafkaTLS: {"kafka-tls", "false", "connect to Kafka over TLS (system roots)", false,
		func(c *Config, v string) (err error) { c.KafkaTLS, err = parseBool(v); return err }},
	KafkaSASLMechanism: {"kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none", false,
		func(c *Config, v string) error {
			c.KafkaSASLMechanism = strings.ToUpper(v)
			return checkSASL(c.KafkaSASLMechanism)
		}},
	KafkaSASLUser: {"kafka-sasl-user", "", "SASL user name", false,
		func(c *Config, v string) error { c.KafkaSASLUser = v; return nil }},
	KafkaSASLPassword: {"kafka-sasl-password", "", "SASL password", true,
		func(c *Config, v string) error { c.KafkaSASLPassword = v; return nil }},
	HTTPAddr: {"http-addr", "127.0.0.1:8080", "address the HTTP API listens on", false,
		func(c *Config, v string) error { c.HTTPAddr = v; return checkListenAddr(v) }},
	TopicPrefix: {"topic-prefix", "events.", "prefix of the Kafka topic of each category", false,
		func(c *Config, v string) error { c.TopicPrefix = v; return checkTopicPrefix(v) }},
	TopicPartitions: {"topic-partitions", "12", "partitions of a category topic created on first use", false,
		func(c *Config, v string) (err error) { c.TopicPartitions, err = parsePositive(v, 10000); return err }},
	StoreName: {"store-name", "strata", "name of this store: the CloudEvents source of every event", false,
		func(c *Config, v string) error { c.StoreName = v; return checkNonEmpty(v) }},
	MaxEventBytes: {"max-event-bytes", strconv.Itoa(DefaultMaxEventBytes),
		"largest Kafka record one event may make (key, value, headers and a record batch's overhead); appends of a larger event are refused; " +
			"the relay's producer takes records up to this size (at least 1000012); keep the topics' max.message.bytes above it", false,
		func(c *Config, v string) (err error) {
			c.MaxEventBytes, err = parseRange(v, MinMaxEventBytes, MaxMaxEventBytes)
			return err
		}},
	SchemasDir: {"schemas-dir", "schemas", "directory of .avsc event schemas", false,
		func(c *Config, v string) error { c.SchemasDir = v; return checkNonEmpty(v) }},
	RegistryURL: {"registry-url", "", "external Confluent-compatible schema registry; empty uses the embedded one", false,
		func(c *Config, v string) error { c.RegistryURL = v; return checkHTTPURL(v) }},
	APITokens: {"api-tokens", "", "bearer tokens as token:role[:principal], comma-separated; roles reader, writer, admin", true,
		func(c *Config, v string) (err error) { c.APITokens, err = parseTokens(v); return err }},
	AllowUnauthenticated: {"allow-unauthenticated", "false", "serve without tokens on a non-loopback address", false,
		func(c *Config, v string) (err error) { c.AllowUnauthenticated, err = parseBool(v); return err }},
	GroupPrefix: {"group-prefix", "strata.projection.", "prefix of each projection's consumer group", false,
		func(c *Config, v string) error { c.GroupPrefix = v; return nil }},
	ReadModelDatabaseURL: {"readmodel-database-url", "", "PostgreSQL URL of the read models; empty uses the store's database", true,
		func(c *Config, v string) error {
			c.ReadModelDatabaseURL = v
			if v == "" {
				return nil
			}
			return checkPostgresURL(v)
		}},
	ReadModelSchema: {"readmodel-schema", "readmodel", "schema of the read models and the projector's bookkeeping", false,
		func(c *Config, v string) error { c.ReadModelSchema = v; return checkIdentifier(v) }},
	ProjectionsDir: {"projections-dir", "projections", "directory of declarative .sql projections; a missing directory holds none", false,
		func(c *Config, v string) error { c.ProjectionsDir = v; return checkNonEmpty(v) }},
	LogLevel: {"log-level", "info", "debug, info, warn or error", false,
		func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	MasterKeyFile: {"master-key-file", "", "file of the master keys that wrap the data subjects' keys: one per line, 64 hex digits, " +
		"the current one first; without it, events with personal fields are refused", false,
		func(c *Config, v string) error { c.MasterKeyFile = v; return nil }},
	OTLPEndpoint: {"otel-exporter-otlp-endpoint", "", "OTLP/HTTP endpoint to export traces to, a base URL (http://collector:4318, to which /v1/traces is added); " +
		"empty uses OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT, and without either no trace is exported", false,
		func(c *Config, v string) error {
			c.OTLPEndpoint = v
			if v == "" {
				return nil
			}
			return checkHTTPURL(v)
		}},
	LogFormat: {"log-format", "text", "text or json", false,
		func(c *Config, v string) error { c.LogFormat = v; return checkOneOf(v, "text", "json") }},
}

// Command describes a command line for Load.
type Command struct {
	// Name is the command as typed, e.g. "writer migrate".
	Name string
	// Summary is one paragraph shown by --help.
	Summary string
	// Settings are the settings the command reads.
	Settings []Setting
	// Defaults overrides the defaults of some settings for this command
	// (the projector's HTTP address is not the writer's).
	Defaults map[Setting]string
	// Flags adds the command's own flags to the set before parsing.
	Flags func(fs *flag.FlagSet)
}

// Load reads the command's settings from getenv and args. It returns
// flag.ErrHelp after printing the help to stdout when asked for it, and an
// error naming the setting for any bad value. Args left after the flags
// are returned.
func Load(cmd Command, args []string, getenv func(string) string, stdout io.Writer) (*Config, []string, error) {
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := make(map[Setting]*string, len(cmd.Settings))
	for _, s := range cmd.Settings {
		sp, ok := specs[s]
		if !ok {
			panic("config: unknown setting " + string(s))
		}
		v := cmd.def(s)
		if e, ok := lookup(getenv, string(s)); ok {
			v = e
		}
		values[s] = fs.String(sp.flag, v, sp.help)
	}
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			PrintHelp(stdout, cmd, fs)
			return nil, nil, flag.ErrHelp
		}
		return nil, nil, fmt.Errorf("%w (see %s --help)", err, cmd.Name)
	}
	c := &Config{}
	for _, s := range cmd.Settings {
		// Apply every setting's default first: a command reads the
		// zero Config only for settings it did not declare.
		if err := specs[s].apply(c, *values[s]); err != nil {
			return nil, nil, fmt.Errorf("%s (--%s): %w", s, specs[s].flag, err)
		}
	}
	return c, fs.Args(), nil
}

// def is setting s's default for the command.
func (cmd Command) def(s Setting) string {
	if v, ok := cmd.Defaults[s]; ok {
		return v
	}
	return specs[s].def
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// PrintHelp writes the command's summary and a table of its flags with
// their environment variables and defaults.
func PrintHelp(w io.Writer, cmd Command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n%s\n\nFlags (each also an environment variable; a flag wins):\n", cmd.Name, cmd.Summary)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	byFlag := map[string]Setting{}
	for _, s := range cmd.Settings {
		byFlag[specs[s].flag] = s
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, n := range names {
		f := fs.Lookup(n)
		if s, ok := byFlag[n]; ok {
			def := cmd.def(s)
			if def == "" {
				def = "(none)"
			} else if specs[s].secret {
				def = Redact(def)
			}
			fmt.Fprintf(tw, "  --%s\t%s\t%s, default %s\n", n, s, f.Usage, def)
		} else {
			def := f.DefValue
			if def == "" {
				def = "(none)"
			}
			fmt.Fprintf(tw, "  --%s\t\t%s, default %s\n", n, f.Usage, def)
		}
	}
	tw.Flush()
}

// Redact hides the password of a URL, and any other secret value entirely.
func Redact(v string) string {
	u, err := url.Parse(v)
	switch {
	case v == "":
		return ""
	case err != nil || u.Scheme == "" || u.Host == "":
		return "xxxxx"
	case u.User != nil:
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return u.String()
}

// LogValue lets slog print a Config with its secrets redacted.
func (c *Config) LogValue() slog.Value {
	roles := make([]string, len(c.APITokens))
	for i, t := range c.APITokens {
		roles[i] = t.Role
	}
	return slog.GroupValue(
		slog.String("database", Redact(c.DatabaseURL)),
		slog.String("schema", c.DatabaseSchema),
		slog.String("kafka", strings.Join(c.KafkaBrokers, ",")),
		slog.String("http", c.HTTPAddr),
		slog.Any("tokens", roles),
	)
}

// Logger builds the logger the settings ask for, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ReadModelURL returns the read-model database, the store's by default.
func (c *Config) ReadModelURL() string {
	if c.ReadModelDatabaseURL != "" {
		return c.ReadModelDatabaseURL
	}
	return c.DatabaseURL
}

// CheckExposure refuses to serve HTTPAddr without authentication (no
// APITokens) on anything but a loopback address, unless
// AllowUnauthenticated says to.
func (c *Config) CheckExposure() error {
	if len(c.APITokens) == 0 && !IsLoopback(c.HTTPAddr) && !c.AllowUnauthenticated {
		return fmt.Errorf("refusing to serve %s without authentication: set %s, listen on a loopback address, "+
			"or set %s=true", c.HTTPAddr, APITokens, AllowUnauthenticated)
	}
	return nil
}

// IsLoopback reports whether addr listens only on a loopback interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func splitList(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

func parsePositive(v string, max int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%q is not a whole number from 1 to %d", v, max)
	}
	return n, nil
}

func parseRange(v string, least, most int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < least || n > most {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", v, least, most)
	}
	return n, nil
}

func checkNonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkOneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

func checkPostgresURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("%q is not a postgres:// URL", Redact(v))
	}
	return nil
}

func checkHTTPURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", v)
	}
	return nil
}

func checkIdentifier(v string) error {
	if v == "" || len(v) > 63 {
		return fmt.Errorf("%q must be 1 to 63 characters", v)
	}
	for i, r := range v {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("%q must be lower-case letters, digits and _, starting with a letter or _", v)
		}
	}
	return nil
}

func checkHostPorts(addrs []string) error {
	if len(addrs) == 0 {
		return errors.New("no brokers given")
	}
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("%q is not host:port", a)
		}
	}
	return nil
}

func checkListenAddr(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	return nil
}

func checkSASL(v string) error {
	return checkOneOf(v, "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
}

func checkTopicPrefix(v string) error {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q may hold only letters, digits, '.', '_' and '-', as Kafka topic names do", v)
		}
	}
	return nil
}

func parseTokens(v string) ([]Token, error) {
	if v == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []Token
	for i, entry := range strings.Split(v, ",") {
		parts := strings.Split(strings.TrimSpace(entry), ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
			return nil, fmt.Errorf("entry %d is not token:role or token:role:principal", i+1)
		}
		t := Token{Secret: parts[0], Role: parts[1]}
		if len(parts) == 3 {
			t.Principal = parts[2]
		}
		if err := checkOneOf(t.Role, RoleReader, RoleWriter, RoleAdmin); err != nil {
			return nil, fmt.Errorf("entry %d: role %w", i+1, err)
		}
		if len(t.Secret) < 16 {
			return nil, fmt.Errorf("entry %d: a token must be at least 16 characters", i+1)
		}
		if seen[t.Secret] {
			return nil, fmt.Errorf("entry %d repeats a token", i+1)
		}
		seen[t.Secret] = true
		out = append(out, t)
	}
	return out, nil
}
