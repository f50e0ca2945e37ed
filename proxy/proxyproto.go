package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pires/go-proxyproto"
)

// PROXY protocol (HAProxy's, v1 text and v2 binary) on the miner port.
//
// A connection from a network in ProxyProtocolFrom (a load balancer) must start with a
// PROXY header, whose source address then stands for the miner's everywhere: logs,
// the status API, accounting and the per-address limit. The header is read on the
// connection's own goroutine (serveConn), never in the accept loop, within
// ProxyHeaderTimeout.
//
// The socket is not wrapped: the reader relies on the accepted *net.TCPConn (see
// rawio_unix.go). The header is peeked at (MSG_PEEK) until it is whole, parsed, and
// then exactly its bytes are read and dropped, so the Stratum bytes that often share
// its packet stay in the kernel for the line reader.
//
// A connection from anywhere else that starts with a PROXY header is spoofing its
// address: readLine closes it (proxy_header_untrusted) when sniffing its first bytes,
// which costs nothing on the path of a well-behaved miner.

// Header sizes. v1 is one line of at most 107 bytes, "PROXY UNKNOWN\r\n" the shortest.
// v2 is 16 bytes and the length at bytes 14..15 (big-endian) of addresses and TLVs:
// 16+216 for the largest address block (AF_UNIX), the rest for TLVs, and a header
// above maxProxyHeader is refused as invalid.
const (
	v1HeaderMin    = 15
	v1HeaderMax    = 107
	v2HeaderMin    = 16
	maxProxyHeader = 536
)

var (
	proxyV1Prefix = []byte("PROXY ")
	proxyV2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// The PROXY header verdicts, mapped to close reasons by proxyHeaderCloseReason and
// readCloseReason.
var (
	errProxyHeaderMissing   = errors.New("proxy: no PROXY header from a trusted network")
	errProxyHeaderInvalid   = errors.New("proxy: invalid PROXY header")
	errProxyHeaderShort     = errors.New("proxy: incomplete PROXY header")
	errProxyHeaderUntrusted = errors.New("proxy: PROXY header from an untrusted address")
)

// proxyHeaderSize says how long the PROXY header at the start of b is. With n <=
// len(b) it is b[:n]; with n > len(b) b is only its start, or too short to tell, and
// at least n bytes are needed to go on (n never exceeds maxProxyHeader). b that
// cannot start a header is errProxyHeaderMissing; a header over the size limits (or a
// v1 line without its "\n" by byte 107) is errProxyHeaderInvalid. It does not check
// the contents: parseProxyHeader does.
func proxyHeaderSize(b []byte) (int, error) {
	switch {
	case len(b) == 0:
		return 1, nil
	case startsWith(b, proxyV2Sig):
		if len(b) < v2HeaderMin {
			return v2HeaderMin, nil
		}
		n := v2HeaderMin + int(binary.BigEndian.Uint16(b[14:16])) // network byte order
		if n > maxProxyHeader {
			return 0, errProxyHeaderInvalid
		}
		return n, nil
	case startsWith(b, proxyV1Prefix):
		if i := bytes.IndexByte(b[:min(len(b), v1HeaderMax)], '\n'); i >= 0 {
			return i + 1, nil
		}
		if len(b) >= v1HeaderMax {
			return 0, errProxyHeaderInvalid
		}
		return max(len(b)+1, v1HeaderMin), nil
	}
	return 0, errProxyHeaderMissing
}

// startsWith reports whether b and sig agree over the shorter of the two: b may be
// the start of sig, or start with it.
func startsWith(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

// parseProxyHeader parses the PROXY header at the start of b and returns how many
// bytes it takes (never more than len(b)) and the source address it carries. src is
// the zero AddrPort when the header names none (v1 UNKNOWN, v2 LOCAL, AF_UNIX,
// AF_UNSPEC): the connection keeps its own. Errors: errProxyHeaderShort when b holds
// only the start of a header, errProxyHeaderMissing, errProxyHeaderInvalid.
func parseProxyHeader(b []byte) (n int, src netip.AddrPort, err error) {
	n, err = proxyHeaderSize(b)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if n > len(b) {
		return 0, netip.AddrPort{}, errProxyHeaderShort
	}
	br := bytes.NewReader(b[:n])
	r := bufio.NewReaderSize(br, maxProxyHeader)
	h, err := proxyproto.Read(r)
	if err != nil || r.Buffered()+br.Len() != 0 {
		// Refused, or parsed as shorter than its own length says.
		return 0, netip.AddrPort{}, errProxyHeaderInvalid
	}
	if h.Command.IsLocal() {
		return n, netip.AddrPort{}, nil
	}
	switch a := h.SourceAddr.(type) {
	case *net.TCPAddr:
		src = a.AddrPort()
	case *net.UDPAddr:
		src = a.AddrPort()
	}
	return n, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), nil
}

// isProxyHeader reports whether b starts with a PROXY header's signature (v1's
// "PROXY " or v2's 12 bytes); b shorter than the signature does not.
func isProxyHeader(b []byte) bool {
	return bytes.HasPrefix(b, proxyV1Prefix) || bytes.HasPrefix(b, proxyV2Sig)
}

// notJSON is readLine's verdict on first bytes that are not '{': errNotJSON, or
// errProxyHeaderUntrusted for a PROXY header. A connection from ProxyProtocolFrom had
// its header taken before; so this is one from elsewhere, or a second header. Only
// here, on the way to closing, is a header told from other garbage, so a miner pays
// nothing for the check. A signature split over two reads passes for not_json;
// either way the connection closes. Reader only.
//
// Not inlined: this cold path would otherwise enlarge readLine's frame, and with it
// the stack every idle reader parks on (TestSessionIdleMemory).
//
//go:noinline
func (c *conn) notJSON() error {
	if isProxyHeader(c.lr.buf[c.lr.r:c.lr.w]) {
		return errProxyHeaderUntrusted
	}
	return errNotJSON
}

// trusted reports whether ip may send PROXY headers.
func (l *listener) trusted(ip netip.Addr) bool {
	for _, p := range l.cfg.ProxyFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyHeader reads c's PROXY header, which a connection from a trusted network must
// send first, and takes c's per-address slot under the address it carries (c's own
// for v1 UNKNOWN and v2 LOCAL). It returns CloseNone on success; otherwise c must be
// closed with the reason returned. Reader only, before the session starts.
//
// While it waits, close (shutdown) can end the wait: c is in l.headers.
func (l *listener) proxyHeader(c *conn) CloseReason {
	deadline := time.Now().Add(orDefault(l.cfg.ProxyHeaderTimeout, DefaultProxyHeaderTimeout))
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return CloseReadError
	}
	l.mu.Lock()
	if l.shutdown {
		l.mu.Unlock()
		return CloseShutdown
	}
	l.headers[c] = struct{}{} // after our deadline is set, so close's (now) replaces it
	l.mu.Unlock()

	var buf [maxProxyHeader]byte
	src, err := c.readProxyHeader(buf[:])

	l.mu.Lock()
	delete(l.headers, c)
	l.mu.Unlock()
	switch {
	case l.closing():
		return CloseShutdown
	case err != nil:
		return proxyHeaderCloseReason(err)
	}
	if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
		return CloseReadError
	}
	if src.IsValid() {
		c.from, c.ip = src, src.Addr()
	}
	if l.perIP != nil && !l.takeIP(c) {
		return CloseTooManyFromAddress
	}
	return CloseNone
}

// takeIP takes a per-address slot for c.ip, unless c is closed or the address has
// none left. connClosed gives it back.
func (l *listener) takeIP(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Under mu: a close that ran before gave nothing back; one after sees ipHeld.
	if c.closed.Load() || l.perIP[c.ip] >= l.cfg.MaxConnectionsPerIP {
		return false
	}
	l.perIP[c.ip]++
	c.ipHeld = true
	return true
}

// readProxyHeader reads c's PROXY header, using buf (maxProxyHeader bytes), and
// returns the source address it carries, or the zero AddrPort for none. Not a byte
// after the header is read. Reader only.
func (c *conn) readProxyHeader(buf []byte) (netip.AddrPort, error) {
	n, err := c.readHeaderBytes(buf)
	if err != nil {
		return netip.AddrPort{}, err
	}
	_, src, err := parseProxyHeader(buf[:n])
	return src, err
}

// readHeaderBytesExact reads the header into buf one needed piece at a time
// (proxyHeaderSize), never past its end, and returns its length: for a socket with no
// MSG_PEEK. A v1 header costs a read per byte after its first 15, once per connection.
func (c *conn) readHeaderBytesExact(buf []byte) (int, error) {
	have := 0
	for {
		need, err := proxyHeaderSize(buf[:have])
		if err != nil {
			return 0, headerReadError(have, err)
		}
		if need <= have {
			return need, nil
		}
		m, err := io.ReadFull(c.nc, buf[have:need])
		have += m
		if err != nil {
			if have > 0 {
				if _, serr := proxyHeaderSize(buf[:have]); serr != nil {
					return 0, serr // not a header: what came is enough to say so
				}
			}
			return 0, headerReadError(have, err)
		}
	}
}

// headerReadError is the verdict on a header read that failed after have bytes: a
// peer that closed or stayed silent before sending anything is client_closed or
// proxy_header_missing; one that stopped in the middle of a header sent an invalid
// one.
func headerReadError(have int, err error) error {
	switch {
	case errors.Is(err, errProxyHeaderMissing), errors.Is(err, errProxyHeaderInvalid):
		return err
	case have > 0:
		return errProxyHeaderInvalid
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errProxyHeaderMissing
	}
	return err
}

// proxyHeaderCloseReason maps a header read's error to a close reason.
func proxyHeaderCloseReason(err error) CloseReason {
	switch {
	case errors.Is(err, errProxyHeaderMissing):
		return CloseProxyHeaderMissing
	case errors.Is(err, errProxyHeaderInvalid), errors.Is(err, errProxyHeaderShort),
		errors.Is(err, io.ErrUnexpectedEOF):
		return CloseProxyHeaderInvalid
	}
	return readCloseReason(err)
}
