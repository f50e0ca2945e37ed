package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/cmd/internal/flagenv"
	"github.com/hashrelay/hashrelay/proxy"
)

// options is everything the command line configures: the proxy's Config plus the
// command's own settings.
type options struct {
	cfg       proxy.Config
	config    string // TOML file
	logFormat string
	logLevel  string
	demo      bool
	version   bool

	// source says where each setting not left at its default came from: "-name",
	// "HASHRELAY_NAME" or "config FILE", for error messages.
	source map[string]string
}

// commandOnly are the flags read from the command line alone: the environment of a
// container may well hold HASHRELAY_VERSION for its own reasons.
var commandOnly = map[string]bool{"version": true}

// envPrefix names the environment variables: listen → HASHRELAY_LISTEN.
const envPrefix = "HASHRELAY"

// upstreamList is the repeatable -upstream flag.
type upstreamList struct{ pools *[]proxy.PoolURL }

func (u upstreamList) String() string {
	if u.pools == nil {
		return ""
	}
	s := make([]string, len(*u.pools))
	for i, p := range *u.pools {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (u upstreamList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := proxy.ParsePoolURL(part)
		if err != nil {
			return err
		}
		*u.pools = append(*u.pools, p)
	}
	return nil
}

// stringList is a repeatable, comma-separated list flag.
type stringList struct{ v *[]string }

func (l stringList) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l stringList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l.v = append(*l.v, part)
		}
	}
	return nil
}

// prefixList is a repeatable, comma-separated list of networks: CIDRs, or bare
// addresses for one host each.
type prefixList struct{ v *[]netip.Prefix }

func (l prefixList) String() string {
	if l.v == nil {
		return ""
	}
	s := make([]string, len(*l.v))
	for i, p := range *l.v {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l prefixList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return fmt.Errorf("%q is neither an address nor a CIDR network", part)
			}
			a = a.Unmap() // connections are matched by their unmapped address
			*l.v = append(*l.v, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return fmt.Errorf("%q is neither an address nor a CIDR network", part)
		}
		*l.v = append(*l.v, p.Masked())
	}
	return nil
}

// hex32 is a flag holding a uint32 written as 8 hex digits.
type hex32 struct{ v *uint32 }

func (h hex32) String() string {
	if h.v == nil {
		return ""
	}
	return fmt.Sprintf("%08x", *h.v)
}

func (h hex32) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	if err != nil {
		return errors.New("want 8 hex digits")
	}
	*h.v = uint32(n)
	return nil
}

// identityFlag is the -identity flag.
type identityFlag struct{ v *proxy.Identity }

func (f identityFlag) String() string {
	if f.v == nil {
		return ""
	}
	return f.v.String()
}

func (f identityFlag) Set(s string) error {
	id, err := proxy.ParseIdentity(s)
	if err != nil {
		return err
	}
	*f.v = id
	return nil
}

// kvList is a repeatable flag whose values are key=value strings, each parsed into one
// T: -power-model, -curtail-schedule. Those strings separate their own keys with
// commas, so one value holds several separated by ';' instead: that is how
// HASHRELAY_POWER_MODEL and HASHRELAY_CURTAIL_SCHEDULE give more than one. Each
// element of a TOML array is one value.
type kvList[T any] struct {
	v     *[]T
	parse func(string) (T, error)
	raw   []string // the strings parsed, for String
}

func (l *kvList[T]) String() string { return strings.Join(l.raw, ";") }

// Set parses every ';'-separated item of s, appending them all or none. With more
// than one item, the error quotes the one at fault.
func (l *kvList[T]) Set(s string) error {
	var raw []string
	for item := range strings.SplitSeq(s, ";") {
		if item = strings.TrimSpace(item); item != "" {
			raw = append(raw, item)
		}
	}
	parsed := make([]T, len(raw))
	for i, item := range raw {
		x, err := l.parse(item)
		if err != nil {
			if len(raw) > 1 {
				return fmt.Errorf("%q: %v", item, err)
			}
			return err
		}
		parsed[i] = x
	}
	*l.v = append(*l.v, parsed...)
	l.raw = append(l.raw, raw...)
	return nil
}

// priceFlag is the -curtail-price flag: one price-feed string, "" for none.
type priceFlag struct {
	v   *proxy.PriceConfig
	raw string
}

func (f *priceFlag) String() string { return f.raw }

func (f *priceFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		*f.v, f.raw = proxy.PriceConfig{}, ""
		return nil
	}
	p, err := proxy.ParsePriceConfig(s)
	if err != nil {
		return err
	}
	*f.v, f.raw = p, s
	return nil
}

// secretFlag holds a credential (-admin-token). String never returns it, so nothing
// that prints flag values (usage, an error, a dump of the settings) can show it, and
// Set never fails, so no parse error quotes it; it is checked by checkAdminToken,
// whose errors do not quote it either.
type secretFlag struct{ v *string }

func (f secretFlag) String() string     { return "" }
func (f secretFlag) Set(s string) error { *f.v = s; return nil }

// Flexible-load bounds the command checks; the proxy would otherwise clamp these
// values silently.
const (
	// maxCurtailStep bounds -curtail-step: a longer step would hold back the first
	// step of every curtailment, even one asked for with no ramp, by over an hour.
	maxCurtailStep = time.Hour
	// maxDefaultJTH matches the proxy's bound on a configured J/TH.
	maxDefaultJTH = 1000
	// minAdminToken is the shortest -admin-token accepted: it guards switching off
	// the fleet.
	minAdminToken = 16
)

// newFlagSet declares every setting. Each is also read from HASHRELAY_<NAME> and from
// the TOML file's key <name>, in that order of precedence after the command line.
func newFlagSet(o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hashrelay", flag.ContinueOnError)
	fs.SetOutput(out)
	c := &o.cfg
	fs.StringVar(&o.config, "config", "", "TOML configuration file (keys are the flag names)")
	fs.StringVar(&c.Listen, "listen", proxy.DefaultListen, "miner (stratum) listen address")
	fs.Var(upstreamList{&c.Upstreams}, "upstream", "pool URL stratum+tcp://USER[:PASS]@HOST:PORT or stratum+ssl://…[?pin=SPKI-SHA256]; repeat for failover order")
	fs.StringVar(&c.HTTP, "http", proxy.DefaultHTTP, `HTTP address for /healthz, /readyz, /metrics and the API ("off" disables)`)
	fs.Var(identityFlag{&c.Identity}, "identity", "whose name shares go upstream under: pool, worker or passthrough")
	fs.IntVar(&c.MinersPerUpstream, "miners-per-upstream", proxy.DefaultMinersPerUpstream, "miners sharing one upstream session")
	fs.IntVar(&c.PrefixSize, "prefix-size", proxy.DefaultPrefixSize, "per-miner extranonce prefix bytes (1..4)")
	fs.IntVar(&c.MaxLineSize, "max-line-size", proxy.DefaultMaxLineSize, "longest line accepted from a miner, bytes")
	fs.DurationVar(&c.ReadIdleTimeout, "read-idle-timeout", proxy.DefaultReadIdleTimeout, "close a miner silent this long")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", proxy.DefaultWriteTimeout, "close a miner whose writes stall this long")
	fs.IntVar(&c.MaxPendingBytes, "max-pending-bytes", proxy.DefaultMaxPendingBytes, "close a miner with more unsent bytes than this")
	fs.IntVar(&c.MaxConnections, "max-connections", proxy.DefaultMaxConnections, "miner connections in total")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", proxy.DefaultMaxConnectionsPerIP, "miner connections per source address (0 = no limit)")
	fs.Var(prefixList{&c.ProxyProtocolFrom}, "proxy-protocol-from", "networks (CIDR or address) whose connections must start with a PROXY header, v1 or v2, giving the miner's address (repeatable; none = PROXY protocol off)")
	fs.DurationVar(&c.ProxyHeaderTimeout, "proxy-header-timeout", proxy.DefaultProxyHeaderTimeout, "how long a -proxy-protocol-from connection has to send its PROXY header")
	fs.Var(stringList{&c.AllowWorkers}, "allow-worker", "allowed worker name or account (repeatable; none = all allowed)")
	fs.DurationVar(&c.JobRefresh, "job-refresh", proxy.DefaultJobRefresh, "resend work when the pool is quiet this long (< 120s)")
	fs.DurationVar(&c.VardiffShareInterval, "vardiff-interval", proxy.DefaultVardiffShareInterval, "time between shares vardiff aims at")
	fs.DurationVar(&c.VardiffRetarget, "vardiff-retarget", proxy.DefaultVardiffRetarget, "how often vardiff may change a difficulty")
	fs.Float64Var(&c.MinDifficulty, "min-difficulty", proxy.DefaultMinDifficulty, "lowest miner difficulty")
	fs.Float64Var(&c.MaxDifficulty, "max-difficulty", 0, "highest miner difficulty (0 = the pool's)")
	fs.Float64Var(&c.StartDifficulty, "start-difficulty", proxy.DefaultStartDifficulty, "a new miner's difficulty")
	fs.BoolVar(&c.PowerOfTwoDifficulty, "pow2-difficulty", false, "round miner difficulty down to a power of two")
	fs.BoolVar(&c.FakeJobs, "fake-jobs", false, "keep miners hashing unpaid work while no pool is reachable (metered, never forwarded)")
	c.VersionMask = proxy.DefaultVersionMask // before Var, which records the default shown
	fs.Var(hex32{&c.VersionMask}, "version-mask", "version-rolling mask to ask pools for (hex)")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", proxy.DefaultDialTimeout, "bound on connecting to a pool")
	fs.DurationVar(&c.JobTimeout, "job-timeout", proxy.DefaultJobTimeout, "a pool without a job this long is unhealthy")
	fs.DurationVar(&c.SubmitTimeout, "submit-timeout", proxy.DefaultSubmitTimeout, "a pool not answering a submit this long is unhealthy")
	fs.DurationVar(&c.BackoffMin, "backoff-min", proxy.DefaultBackoffMin, "first reconnect back-off")
	fs.DurationVar(&c.BackoffMax, "backoff-max", proxy.DefaultBackoffMax, "longest reconnect back-off")
	fs.DurationVar(&c.FailbackAfter, "failback-after", proxy.DefaultFailbackAfter, "a better pool must be healthy this long before failing back")
	fs.DurationVar(&c.ResumeWindow, "resume-window", proxy.DefaultResumeWindow, "how long shares wait for a pool session to resume")
	fs.IntVar(&c.MaxBufferedShares, "max-buffered-shares", proxy.DefaultMaxBufferedShares, "shares queued per upstream session")
	fs.DurationVar(&c.SubscribeWait, "subscribe-wait", proxy.DefaultSubscribeWait, "how long a miner's subscribe waits for a pool")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", proxy.DefaultShutdownTimeout, "bound on a graceful shutdown")
	fs.StringVar(&c.ReconnectOnShutdown, "reconnect-on-shutdown", "", "HOST:PORT sent to miners in client.reconnect at shutdown")
	fs.DurationVar(&c.ReconnectJitter, "reconnect-jitter", 0, "spread shutdown reconnects over this window")
	fs.DurationVar(&c.WorkerIdleAfter, "worker-idle-after", proxy.DefaultWorkerIdleAfter, "a connected worker with no accepted share this long is idle")
	fs.Float64Var(&c.WorkerDegradedFraction, "worker-degraded-fraction", proxy.DefaultWorkerDegradedFraction, "a worker whose 1h hashrate is below this fraction of its 24h one is degraded")
	fs.Float64Var(&c.WorkerRejectRate, "worker-reject-rate", proxy.DefaultWorkerRejectRate, "a worker whose upstream reject rate over the last hour is above this is rejected")
	fs.DurationVar(&c.WorkerRollingWindow, "worker-rolling-window", proxy.DefaultWorkerRollingWindow, "a rolling worker with no version-rolled share this long is not_rolling")
	fs.StringVar(&c.StateDir, "state-dir", "", "directory keeping the worker counters across restarts (empty = none)")
	fs.DurationVar(&c.StateInterval, "state-interval", proxy.DefaultStateInterval, "how often the counters are saved to -state-dir")
	fs.BoolVar(&c.MetricsPerWorker, "metrics-per-worker", false, "export per-worker series on /metrics")
	fs.IntVar(&c.MetricsMaxWorkers, "metrics-max-workers", proxy.DefaultMetricsMaxWorkers, "most workers with per-worker series")
	cc := &c.Curtail
	fs.Var(&kvList[proxy.PowerModel]{v: &cc.Models, parse: proxy.ParsePowerModel}, "power-model", "a miner type's draw: name=s19,agent=bmminer/2.*,watts=3250,idle=15,priority=1 (repeatable; ';' separates several in one value)")
	fs.Float64Var(&cc.DefaultJoulesPerTH, "power-default-jth", proxy.DefaultJoulesPerTH, "efficiency assumed for workers no -power-model matches, J/TH")
	fs.Var(stringList{&cc.Exempt}, "curtail-exempt", "worker-name glob never curtailed; without '.' it matches the account (repeatable)")
	fs.Var(&kvList[proxy.ScheduleWindow]{v: &cc.Schedule, parse: proxy.ParseScheduleWindow}, "curtail-schedule", "daily curtailment window: tz=Europe/Berlin,days=mon-fri,from=17:00,to=21:00,fraction=0.5,ramp=5m (repeatable; ';' separates several in one value)")
	fs.Var(&priceFlag{v: &cc.Price}, "curtail-price", "price feed: url=URL,field=data.price,above=120,below=100,fraction=1[,ramp=5m,every=1m,hold=10m,stale=15m] (empty = none)")
	fs.DurationVar(&cc.StepInterval, "curtail-step", proxy.MinCurtailStep, "least time between two curtailment steps")
	fs.IntVar(&cc.MaxStepWorkers, "curtail-step-workers", proxy.DefaultMaxStepWorkers, "most workers curtailed or restored per step")
	fs.Var(secretFlag{&c.AdminToken}, "admin-token", "bearer token the mutating API calls must carry (empty = none needed); prefer HASHRELAY_ADMIN_TOKEN or the config file to the command line")
	fs.StringVar(&o.logFormat, "log-format", "json", "json or console")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&o.demo, "demo", false, "run with an in-process simulated pool and simulated miners")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	return fs
}

// parseSettings fills o from args, then the environment, then the TOML file named by
// -config (or HASHRELAY_CONFIG), and validates the result. Errors name the setting
// and where its value came from.
func parseSettings(args []string, getenv func(string) string, out io.Writer) (*options, error) {
	o, err := loadSettings(args, getenv, out)
	if err != nil {
		return nil, err
	}
	if o.demo || o.version {
		return o, nil
	}
	if err := o.cfg.Validate(); err != nil {
		return nil, o.annotate(err)
	}
	return o, nil
}

// loadSettings fills o from the command line, the environment and the TOML file,
// in that order of precedence, and checks the command's own settings and the
// flexible-load ones (checkCurtail); the rest of the proxy's Config is left to its
// Validate.
func loadSettings(args []string, getenv func(string) string, out io.Writer) (*options, error) {
	o := &options{source: map[string]string{}}
	fs := newFlagSet(o, out)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	skip := func(name string) bool { return commandOnly[name] }
	if err := flagenv.Apply(fs, envPrefix, getenv, skip, o.source); err != nil {
		return nil, err
	}
	if o.config != "" {
		if err := applyTOML(fs, o.config, o.source); err != nil {
			return nil, err
		}
	}
	switch o.logFormat {
	case "json", "console":
	default:
		return nil, o.annotate(fmt.Errorf("log-format: %q: want json or console", o.logFormat))
	}
	if _, err := zerolog.ParseLevel(o.logLevel); err != nil || o.logLevel == "" {
		return nil, o.annotate(fmt.Errorf("log-level: %q: want debug, info, warn or error", o.logLevel))
	}
	if err := checkCurtail(&o.cfg); err != nil {
		return nil, o.annotate(err)
	}
	return o, nil
}

// checkCurtail checks the flexible-load settings proxy.Config.Validate leaves alone:
// values the proxy would clamp or default silently, and the admin token. The
// key=value strings were checked as they were parsed. Errors never quote the token.
func checkCurtail(c *proxy.Config) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cc := &c.Curtail
	if j := cc.DefaultJoulesPerTH; !(j > 0 && j <= maxDefaultJTH) {
		bad("power-default-jth: %v: want a number above 0 and at most %d (J/TH)", j, maxDefaultJTH)
	}
	if d := cc.StepInterval; d < proxy.MinCurtailStep || d > maxCurtailStep {
		bad("curtail-step: %v is outside %v..%v", d, proxy.MinCurtailStep, maxCurtailStep)
	}
	if n := cc.MaxStepWorkers; n < 1 {
		bad("curtail-step-workers: %d: want at least 1", n)
	}
	if err := checkAdminToken(c.AdminToken); err != nil {
		bad("admin-token: %v", err)
	}
	return errors.Join(errs...)
}

// checkAdminToken accepts no token (mutating API calls then need none) or one of at
// least minAdminToken visible ASCII characters, which a client can send in an
// Authorization header as is. Its errors do not quote the token.
func checkAdminToken(t string) error {
	if t == "" {
		return nil
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return fmt.Errorf("character %d is a space, a control character or not ASCII (a stray newline from a file?)", i+1)
		}
	}
	if len(t) < minAdminToken {
		return fmt.Errorf("%d characters; want at least %d (e.g. openssl rand -hex 32)", len(t), minAdminToken)
	}
	return nil
}

// annotate adds to each line of err ("setting: what is wrong") where that setting
// came from, when it was not its default.
func (o *options) annotate(err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		name, _, ok := strings.Cut(l, ":")
		if src := o.source[name]; ok && src != "" && src != "-"+name {
			lines[i] = l + " (from " + src + ")"
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// applyTOML sets every flag not already set from the TOML file at path, recording
// the file as their source. Unknown keys are an error, so a typo does not silently
// fall back to a default.
func applyTOML(fs *flag.FlagSet, path string, source map[string]string) error {
	var doc map[string]any
	_, err := toml.DecodeFile(path, &doc)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("config: %v", err)
		}
		if name := secretSyntaxError(fs, path, err); name != "" {
			return fmt.Errorf("config %s: %s: syntax error in its line (not shown: the value is secret; quote it)", path, name)
		}
		return fmt.Errorf("config %s: %v", path, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || k == "config" || commandOnly[k] {
			return fmt.Errorf("config %s: unknown setting %q", path, k)
		}
		if source[k] != "" {
			continue
		}
		source[k] = "config " + path
		var values []any
		switch x := doc[k].(type) {
		case []any:
			values = x
		case map[string]any, []map[string]any:
			return fmt.Errorf("config %s: %s: want a value or an array of values, not a table", path, k)
		default:
			values = []any{x}
		}
		_, secret := f.Value.(secretFlag)
		for _, v := range values {
			if err := flagenv.Set(fs, k, tomlString(v)); err != nil {
				if secret {
					v = "(hidden)"
				}
				return fmt.Errorf("config %s: %s = %v: %v", path, k, v, err)
			}
		}
	}
	return nil
}

// secretSyntaxError returns the name of the secret setting (secretFlag) whose line of
// the file at path the TOML syntax error err is about, or "". The parser's message may
// quote the value: an unquoted token starting with "true" or "false" is read as a
// misspelt boolean and shown in full.
func secretSyntaxError(fs *flag.FlagSet, path string, err error) string {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return ""
	}
	var line string
	if b, rerr := os.ReadFile(path); rerr == nil {
		if lines := strings.Split(string(b), "\n"); pe.Position.Line >= 1 && pe.Position.Line <= len(lines) {
			line = lines[pe.Position.Line-1]
		}
	}
	var name string
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := f.Value.(secretFlag); ok && (pe.LastKey == f.Name || strings.Contains(line, f.Name)) {
			name = f.Name
		}
	})
	return name
}

// tomlString renders a TOML value the way the flag would be written.
func tomlString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Duration:
		return x.String()
	}
	return fmt.Sprint(v)
}
