package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// v2Header returns a PROXY v2 header (PROXY command, TCP) from src to dst,
// formatted by go-proxyproto.
func v2Header(t testing.TB, src, dst string) []byte {
	t.Helper()
	s, d := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst))
	b, err := proxyproto.HeaderProxyFromAddrs(2, s, d).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// v2Local is a v2 LOCAL header (a balancer's health check), byte by byte.
var v2Local = []byte{
	'\r', '\n', '\r', '\n', 0x00, '\r', '\n', 'Q', 'U', 'I', 'T', '\n', // signature
	0x20,       // version 2, command LOCAL
	0x00,       // AF_UNSPEC, UNSPEC
	0x00, 0x00, // length of what follows: 0 (big-endian)
}

// v2TCP4 is a v2 header from 192.0.2.10:40000 to 10.0.0.7:3333, byte by byte.
var v2TCP4 = []byte{
	'\r', '\n', '\r', '\n', 0x00, '\r', '\n', 'Q', 'U', 'I', 'T', '\n', // signature
	0x21,       // version 2, command PROXY
	0x11,       // AF_INET, STREAM
	0x00, 0x0c, // length: 12 (big-endian)
	192, 0, 2, 10, // source address
	10, 0, 0, 7, // destination address
	0x9c, 0x40, // source port 40000 (big-endian)
	0x0d, 0x05, // destination port 3333
}

// TestParseProxyHeader: the pure parser on whole, partial, foreign and broken headers.
func TestParseProxyHeader(t *testing.T) {
	f := func(in string, wantN int, wantSrc string, wantErr error) {
		t.Helper()
		n, src, err := parseProxyHeader([]byte(in))
		var want netip.AddrPort
		if wantSrc != "" {
			want = netip.MustParseAddrPort(wantSrc)
		}
		if n != wantN || src != want || !errors.Is(err, wantErr) {
			t.Errorf("parseProxyHeader(%q) = %d, %v, %v; want %d, %v, %v", in, n, src, err, wantN, want, wantErr)
		}
	}
	const line = `{"id":1,"method":"mining.subscribe","params":[]}` + "\n"
	v1 := "PROXY TCP4 192.0.2.10 10.0.0.7 40000 3333\r\n"
	f(v1, len(v1), "192.0.2.10:40000", nil)
	f(v1+line, len(v1), "192.0.2.10:40000", nil) // the Stratum line after it is not taken
	v1six := "PROXY TCP6 2001:db8::1 2001:db8::2 40000 3333\r\n"
	f(v1six+line, len(v1six), "[2001:db8::1]:40000", nil)
	f("PROXY UNKNOWN\r\n"+line, 15, "", nil)
	f("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 35, "", nil)
	f(string(v2TCP4)+line, 28, "192.0.2.10:40000", nil)
	f(string(v2Local)+line, 16, "", nil)
	// Partial headers ask for more.
	for _, in := range []string{"", "P", "PROXY TCP4 192.0.2.10", v1[:len(v1)-1], string(v2TCP4[:5]), string(v2TCP4[:20])} {
		f(in, 0, "", errProxyHeaderShort)
	}
	// Not a header at all.
	f(line, 0, "", errProxyHeaderMissing)
	f("PROXX TCP4", 0, "", errProxyHeaderMissing)
	f("\r\n\r\nGET", 0, "", errProxyHeaderMissing)
	// Broken ones.
	f("PROXY TCP4 192.0.2.10 10.0.0.7 40000\r\n", 0, "", errProxyHeaderInvalid)
	f("PROXY TCP4 192.0.2.10 10.0.0.7 40000 3333\n", 0, "", errProxyHeaderInvalid) // no "\r"
	f("PROXY TCP4 999.0.2.10 10.0.0.7 40000 3333\r\n", 0, "", errProxyHeaderInvalid)
	f("PROXY "+strings.Repeat("x", 120)+"\r\n", 0, "", errProxyHeaderInvalid) // over 107 bytes
	big := bytes.Clone(v2TCP4)
	binary.BigEndian.PutUint16(big[14:], maxProxyHeader) // 16+536 bytes: over the limit
	f(string(big), 0, "", errProxyHeaderInvalid)
	short := bytes.Clone(v2TCP4)
	short[15] = 4 // AF_INET needs 12 address bytes
	f(string(short), 0, "", errProxyHeaderInvalid)
	badVersion := bytes.Clone(v2TCP4)
	badVersion[12] = 0x31
	f(string(badVersion), 0, "", errProxyHeaderInvalid)
}

// FuzzProxyHeader: parseProxyHeader never panics and never claims more bytes than
// it was given; a header it accepts parses again from its own bytes alone, and
// proxyHeaderSize never asks for more than maxProxyHeader.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.10 10.0.0.7 40000 3333\r\n{\"id\":1}\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 40000 3333\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2TCP4)
	f.Add(v2Local)
	f.Add(v2Header(f, "[2001:db8::1]:1", "[2001:db8::2]:2"))
	f.Add([]byte(`{"id":1,"method":"mining.subscribe","params":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, src, err := parseProxyHeader(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if err != nil {
			if n != 0 || src.IsValid() {
				t.Fatalf("error %v with %d bytes and source %v", err, n, src)
			}
		} else if n2, src2, err2 := parseProxyHeader(b[:n]); n2 != n || src2 != src || err2 != nil {
			t.Fatalf("header %q alone: %d, %v, %v; want %d, %v", b[:n], n2, src2, err2, n, src)
		}
		if need, err := proxyHeaderSize(b); err == nil && need > maxProxyHeader {
			t.Fatalf("proxyHeaderSize asks for %d bytes", need)
		}
	})
}

// proxyTestServer starts HashRelay trusting from, with a short header timeout, in
// front of a pool whose difficulty a test share meets quickly.
func proxyTestServer(t *testing.T, cfg Config, from ...string) (*Server, *stratumtest.Pool) {
	t.Helper()
	for _, p := range from {
		cfg.ProxyProtocolFrom = append(cfg.ProxyProtocolFrom, netip.MustParsePrefix(p))
	}
	cfg.ProxyHeaderTimeout = orDefault(cfg.ProxyHeaderTimeout, 300*time.Millisecond)
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-6})
	srv := newTestProxy(t, cfg, pool)
	waitFor(t, rawWait, "the proxy's first job", func() bool { return pool.Stats().Sessions > 0 })
	return srv, pool
}

// proxyLogin sends header and the subscribe in one write, then authorizes as
// worker, and returns the first job.
func proxyLogin(c *rawMiner, header []byte, worker string) *stratum.Job {
	c.t.Helper()
	b := append(bytes.Clone(header), `{"id":1,"method":"mining.subscribe","params":["rawclient/1.0"]}`+"\n"...)
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
	c.parseSubscribe(c.reply("1"))
	wantRawTrue(c.t, c.call("2", "mining.authorize", fmt.Sprintf(`[%q,"x"]`, worker)))
	return c.job()
}

// TestProxyProtocolSession: behind a trusted balancer, a miner whose PROXY header
// and subscribe arrive in one packet logs in and gets a share to the pool, and the
// status API shows the address from the header (its own for UNKNOWN and LOCAL).
func TestProxyProtocolSession(t *testing.T) {
	srv, pool := proxyTestServer(t, Config{}, "127.0.0.0/8")
	for i, tc := range []struct {
		name   string
		header []byte
		want   string // remote_addr; "" for the socket's own
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.10 127.0.0.1 40000 3333\r\n"), "192.0.2.10:40000"},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 ::1 40001 3333\r\n"), "[2001:db8::1]:40001"},
		{"v2 tcp4", v2Header(t, "198.51.100.7:40002", "127.0.0.1:3333"), "198.51.100.7:40002"},
		{"v2 tcp6", v2Header(t, "[2001:db8::7]:40003", "[::1]:3333"), "[2001:db8::7]:40003"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), ""},
		{"v2 local", v2Local, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRawMiner(t, srv.Addr().String())
			worker := fmt.Sprintf("farm.pp%d", i)
			j := proxyLogin(c, tc.header, worker)
			before := pool.Stats().Verdicts[stratum.VerdictAccepted]
			s := c.findShare(j, c.en2(1), 0, 0, meetsDiff(t, 1e-6))
			wantRawTrue(t, c.call("3", "mining.submit", s.params(worker)))
			waitFor(t, rawWait, "the share at the pool", func() bool {
				return pool.Stats().Verdicts[stratum.VerdictAccepted] > before
			})
			want := tc.want
			if want == "" {
				want = c.nc.LocalAddr().String()
			}
			if got := apiWorker(t, srv, worker).RemoteAddr; got != want {
				t.Errorf("remote_addr %q; want %q", got, want)
			}
		})
	}
}

// TestProxyProtocolUntrustedPlain: with PROXY protocol on for another network, a
// miner without a header works as before, under its own address.
func TestProxyProtocolUntrustedPlain(t *testing.T) {
	srv, _ := proxyTestServer(t, Config{}, "10.0.0.0/8")
	c := dialRawMiner(t, srv.Addr().String())
	c.login("farm.plain")
	if got, want := apiWorker(t, srv, "farm.plain").RemoteAddr, c.nc.LocalAddr().String(); got != want {
		t.Errorf("remote_addr %q; want %q", got, want)
	}
}

// TestProxyProtocolRefused: each way a connection fails its PROXY header closes it
// with its own reason, counted once, within the header timeout; the per-address
// slots stay empty.
func TestProxyProtocolRefused(t *testing.T) {
	const line = `{"id":1,"method":"mining.subscribe","params":[]}` + "\n"
	big := bytes.Clone(v2TCP4)
	binary.BigEndian.PutUint16(big[14:], 1000)
	for _, tc := range []struct {
		name    string
		trusted string
		send    string // "" sends nothing
		want    CloseReason
	}{
		{"plain line from a trusted net", "127.0.0.0/8", line, CloseProxyHeaderMissing},
		{"silent trusted peer", "127.0.0.0/8", "", CloseProxyHeaderMissing},
		{"garbage v1", "127.0.0.0/8", "PROXY TCP4 nonsense\r\n" + line, CloseProxyHeaderInvalid},
		{"truncated v1", "127.0.0.0/8", "PROXY TCP4 192.0.2.10 127.0.0.1", CloseProxyHeaderInvalid},
		{"over-long v1", "127.0.0.0/8", "PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n", CloseProxyHeaderInvalid},
		{"truncated v2", "127.0.0.0/8", string(v2TCP4[:20]), CloseProxyHeaderInvalid},
		{"oversized v2", "127.0.0.0/8", string(big) + strings.Repeat("\x00", 1000), CloseProxyHeaderInvalid},
		{"v1 from an untrusted peer", "10.0.0.0/8", "PROXY TCP4 192.0.2.10 127.0.0.1 40000 3333\r\n" + line, CloseProxyHeaderUntrusted},
		{"v2 from an untrusted peer", "10.0.0.0/8", string(v2TCP4) + line, CloseProxyHeaderUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := proxyTestServer(t, Config{MaxConnectionsPerIP: 4}, tc.trusted)
			c := dialRawMiner(t, srv.Addr().String())
			start := time.Now()
			if tc.send != "" {
				if _, err := c.nc.Write([]byte(tc.send)); err != nil {
					t.Fatal(err)
				}
			}
			c.expectEOF(rawWait)
			if d := time.Since(start); d > time.Second {
				t.Errorf("closed after %v; want within the 300ms header timeout", d)
			}
			waitClosedCount(t, srv, tc.want, 1)
			waitFor(t, rawWait, "the connection to be released", func() bool { return srv.ln.activeConns() == 0 })
			srv.ln.mu.Lock()
			held := len(srv.ln.perIP)
			srv.ln.mu.Unlock()
			if held != 0 {
				t.Errorf("%d addresses hold per-address slots; want none", held)
			}
		})
	}
}

// TestProxyProtocolPerIP: behind the balancer (every connection from 127.0.0.1),
// MaxConnectionsPerIP counts the addresses in the headers: two miners with different
// ones both work, a second with the same one is closed too_many_from_address, and
// once they close the slots are free again.
func TestProxyProtocolPerIP(t *testing.T) {
	srv, _ := proxyTestServer(t, Config{MaxConnectionsPerIP: 1}, "127.0.0.1/32")
	hdr := func(src string) []byte { return fmt.Appendf(nil, "PROXY TCP4 %s 127.0.0.1 40000 3333\r\n", src) }
	for round := range 2 {
		a := dialRawMiner(t, srv.Addr().String())
		proxyLogin(a, hdr("192.0.2.1"), fmt.Sprintf("farm.a%d", round))
		b := dialRawMiner(t, srv.Addr().String())
		proxyLogin(b, v2Header(t, "192.0.2.2:40000", "127.0.0.1:3333"), fmt.Sprintf("farm.b%d", round))

		dup := dialRawMiner(t, srv.Addr().String())
		if _, err := dup.nc.Write(hdr("192.0.2.1")); err != nil {
			t.Fatal(err)
		}
		dup.expectEOF(rawWait)
		waitClosedCount(t, srv, CloseTooManyFromAddress, float64(round+1))

		a.nc.Close()
		b.nc.Close()
		waitFor(t, rawWait, "the connections to close", func() bool { return srv.ln.activeConns() == 0 })
		srv.ln.mu.Lock()
		held := fmt.Sprint(srv.ln.perIP)
		srv.ln.mu.Unlock()
		if held != "map[]" {
			t.Fatalf("round %d: per-address slots %s after every connection closed; want none", round, held)
		}
	}
}

// TestProxyProtocolShutdown: a trusted peer that never sends its header does not
// hold up a shutdown for the header timeout.
func TestProxyProtocolShutdown(t *testing.T) {
	srv, _ := proxyTestServer(t, Config{ProxyHeaderTimeout: time.Minute}, "127.0.0.0/8")
	c := dialRawMiner(t, srv.Addr().String())
	waitFor(t, rawWait, "the connection to be accepted", func() bool { return srv.ln.activeConns() == 1 })
	start := time.Now()
	shutdownNow(t, srv)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with a silent trusted peer", d)
	}
	c.expectEOF(rawWait)
	if got := closedCount(t, srv, CloseShutdown); got != 1 {
		t.Errorf("closed shutdown = %v; want 1", got)
	}
}

// TestReadProxyHeaderExact: without MSG_PEEK (a net.Pipe here, every connection
// where rawio_other.go builds), the header is read piece by piece and not a byte
// of the line after it is taken.
func TestReadProxyHeaderExact(t *testing.T) {
	const line = `{"id":1,"method":"mining.subscribe","params":[]}` + "\n"
	f := func(header []byte, wantSrc string, wantErr error) {
		t.Helper()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() {
			b.Write(append(bytes.Clone(header), line...))
			b.Close()
		}()
		c := newConn(a, 1, connLimits{}, nil)
		if c.raw != nil {
			t.Fatal("a net.Pipe has a raw connection")
		}
		var buf [maxProxyHeader]byte
		src, err := c.readProxyHeader(buf[:])
		var want netip.AddrPort
		if wantSrc != "" {
			want = netip.MustParseAddrPort(wantSrc)
		}
		if src != want || !errors.Is(err, wantErr) {
			t.Errorf("header %q: got %v, %v; want %v, %v", header, src, err, want, wantErr)
		}
		if err != nil {
			return
		}
		rest := make([]byte, len(line))
		a.SetReadDeadline(time.Now().Add(rawWait))
		if _, err := io.ReadFull(a, rest); err != nil || string(rest) != line {
			t.Errorf("header %q: after it %q, %v; want %q", header, rest, err, line)
		}
	}
	f([]byte("PROXY TCP4 192.0.2.10 10.0.0.7 40000 3333\r\n"), "192.0.2.10:40000", nil)
	f([]byte("PROXY UNKNOWN\r\n"), "", nil)
	f(v2TCP4, "192.0.2.10:40000", nil)
	f(v2Local, "", nil)
	f(nil, "", errProxyHeaderMissing)
	f([]byte("PROXY TCP4 192.0.2.10\r\n"), "", errProxyHeaderInvalid)
}
