package stratumtest

import "net"

// countingConn counts the bytes read and written on a Miner's connection into the
// Miner's totals: one atomic add per Read or Write call, that is per batch of
// lines, not per line.
type countingConn struct {
	net.Conn
	m *Miner
}

// Read implements net.Conn.
func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.m.bytesIn.Add(uint64(n))
	}
	return n, err
}

// Write implements net.Conn.
func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.m.bytesOut.Add(uint64(n))
	}
	return n, err
}
