package proxy

// CloseReason says why a miner connection closed. Each connection records exactly one,
// the first; String gives the metric label.
type CloseReason uint8

// The close reasons. Append new ones before NumCloseReasons: metrics index by value.
const (
	// CloseNone: the connection is open.
	CloseNone CloseReason = iota
	// CloseClientClosed: the miner closed (EOF).
	CloseClientClosed
	// CloseReadError: reading failed (connection reset, network error).
	CloseReadError
	// CloseReadIdle: nothing arrived for ReadIdleTimeout.
	CloseReadIdle
	// CloseLineTooLong: a line was longer than MaxLineSize.
	CloseLineTooLong
	// CloseNotJSON: the first bytes were not '{' (a TLS ClientHello on the plain
	// port, HTTP, a port scanner).
	CloseNotJSON
	// CloseProtocol: the session gave up on malformed or out-of-order requests.
	CloseProtocol
	// CloseSlowConsumer: unsent bytes passed MaxPendingBytes.
	CloseSlowConsumer
	// CloseWriteTimeout: a write did not complete within WriteTimeout.
	CloseWriteTimeout
	// CloseWriteError: writing failed.
	CloseWriteError
	// CloseTooManyConnections: refused at accept, MaxConnections reached.
	CloseTooManyConnections
	// CloseTooManyFromAddress: refused at accept, MaxConnectionsPerIP reached.
	CloseTooManyFromAddress
	// CloseUnauthorized: the worker is not allowed.
	CloseUnauthorized
	// CloseShutdown: the proxy is stopping.
	CloseShutdown
	// CloseUpstreamIncompatible: the upstream changed in a way the miner cannot
	// follow in place; it must reconnect and resubscribe.
	CloseUpstreamIncompatible
	// CloseKicked: closed by an operator.
	CloseKicked
	// CloseProxyHeaderMissing: a peer in ProxyProtocolFrom sent no PROXY header
	// first, or none within ProxyHeaderTimeout.
	CloseProxyHeaderMissing
	// CloseProxyHeaderInvalid: a peer in ProxyProtocolFrom sent a malformed,
	// truncated or oversized PROXY header.
	CloseProxyHeaderInvalid
	// CloseProxyHeaderUntrusted: a peer outside ProxyProtocolFrom sent a PROXY
	// header (an attempt to pass for another address).
	CloseProxyHeaderUntrusted
	// CloseCurtailed: the worker is curtailed (curtail.go): closed when curtailed,
	// and refused at authorize until restored.
	CloseCurtailed

	// NumCloseReasons is the number of reasons, for arrays indexed by reason.
	NumCloseReasons
)

var closeReasonNames = [NumCloseReasons]string{
	CloseNone:                 "none",
	CloseClientClosed:         "client_closed",
	CloseReadError:            "read_error",
	CloseReadIdle:             "read_idle",
	CloseLineTooLong:          "line_too_long",
	CloseNotJSON:              "not_json",
	CloseProtocol:             "protocol",
	CloseSlowConsumer:         "slow_consumer",
	CloseWriteTimeout:         "write_timeout",
	CloseWriteError:           "write_error",
	CloseTooManyConnections:   "too_many_connections",
	CloseTooManyFromAddress:   "too_many_from_address",
	CloseUnauthorized:         "unauthorized",
	CloseShutdown:             "shutdown",
	CloseUpstreamIncompatible: "upstream_incompatible",
	CloseKicked:               "kicked",
	CloseProxyHeaderMissing:   "proxy_header_missing",
	CloseProxyHeaderInvalid:   "proxy_header_invalid",
	CloseProxyHeaderUntrusted: "proxy_header_untrusted",
	CloseCurtailed:            "curtailed",
}

// String returns the snake_case name, usable as a metric label.
func (r CloseReason) String() string {
	if r < NumCloseReasons {
		return closeReasonNames[r]
	}
	return "unknown"
}
